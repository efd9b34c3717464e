"""A TCP relay between the browser and the server under test (part of console_test.py).

Everything the browser sends goes through it, so the test can cut every open connection (the
console's /events stream among them) and refuse new ones for a while, as a network failure
would, and then watch the console reconnect."""

import socket
import threading


class Relay:
    def __init__(self, target_port, host="127.0.0.1"):
        self.target = (host, target_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = set()
        self.refusing = False
        self.closed = False
        self.thread = threading.Thread(target=self._accept, name="relay-accept", daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                refusing = self.refusing
            if refusing:
                self._close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                self._close(client)
                continue
            with self.lock:
                self.conns.add(client)
                self.conns.add(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self.lock:
                for s in (src, dst):
                    if s in self.conns:
                        self.conns.discard(s)
                        self._close(s)

    @staticmethod
    def _close(s):
        try:
            s.close()
        except OSError:
            pass

    def cut(self, refuse=True):
        """Breaks every open connection; with refuse, new ones are closed at once until heal()."""
        with self.lock:
            self.refusing = refuse
            conns = list(self.conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def heal(self):
        with self.lock:
            self.refusing = False

    def close(self):
        self.closed = True
        self.cut(refuse=True)
        self._close(self.listener)
