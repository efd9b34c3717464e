"""What every module of the soak driver shares: the one address it connects to, and logging."""
import datetime

HOST = "127.0.0.1"  # the only address this driver ever connects to


def utc():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def log(msg):
    print(f"[soak {utc()}] {msg}", flush=True)
