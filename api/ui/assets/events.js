// GET /events read with fetch() (EventSource cannot send an Authorization header) and parsed as
// Server-Sent Events here. Reconnects by itself with a backoff of 1 s doubling to 10 s and sends
// Last-Event-ID so that the server replays what was missed (or answers `reset`).
import {authHeaders} from './api.js';

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 10000;
const SILENCE_MS = 45000; // the server sends a heartbeat every 15 s: 45 s of nothing is a dead stream

export class EventStream {
  /**
   * onEvent({id, event, data}) for each event (data parsed from JSON);
   * onState(state, info): 'connecting' | 'live' | 'reconnecting' (info.retryInMs, info.error) |
   * 'stopped'; onOpen(resumed) when a stream answered 200 (resumed: Last-Event-ID was sent);
   * onUnauthorized(message) when the stream answers 401.
   */
  constructor({onEvent, onState, onOpen, onUnauthorized}) {
    Object.assign(this, {onEvent, onState, onOpen, onUnauthorized});
    this.lastId = null;
    this.backoff = MIN_BACKOFF_MS;
    this.running = false;
    this.controller = null;
    this.timer = null;
    this.eventsSeen = 0;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.controller?.abort();
    this.onState?.('stopped', {});
  }

  /** Drops the connection and reconnects at once (tests, or a manual "reconnect"). */
  reconnectNow() {
    this.backoff = MIN_BACKOFF_MS;
    this.controller?.abort();
  }

  async connect() {
    clearTimeout(this.timer);
    if (!this.running) return;
    this.onState?.(this.lastId === null ? 'connecting' : 'reconnecting', {retryInMs: 0});
    const controller = new AbortController();
    this.controller = controller;
    let error = null;
    let watchdog = null;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
    };
    try {
      const headers = authHeaders({Accept: 'text/event-stream'});
      const resumed = this.lastId !== null;
      if (resumed) headers['Last-Event-ID'] = this.lastId;
      arm();
      const resp = await fetch('/events', {headers, signal: controller.signal, cache: 'no-store'});
      if (!resp.ok) {
        let msg = `GET /events answered ${resp.status}`;
        try { msg = (await resp.json()).error || msg; } catch { /* not JSON */ }
        if (resp.status === 401) {
          this.running = false;
          clearTimeout(watchdog);
          this.onUnauthorized?.(msg);
          return;
        }
        if (resp.status === 400 && this.lastId !== null) this.lastId = null; // bad Last-Event-ID
        throw new Error(msg);
      }
      this.backoff = MIN_BACKOFF_MS;
      this.onState?.('live', {});
      this.onOpen?.(resumed);
      await this.read(resp.body.getReader(), arm);
      error = 'the server closed the stream';
    } catch (e) {
      error = e.name === 'AbortError' ? 'no data for too long, or aborted' : e.message;
    } finally {
      clearTimeout(watchdog);
    }
    if (!this.running) return;
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    this.onState?.('reconnecting', {retryInMs: wait, error});
    this.timer = setTimeout(() => this.connect(), wait);
  }

  /** Reads the stream to its end, dispatching one event per blank-line-terminated block. */
  async read(reader, arm) {
    const decoder = new TextDecoder();
    let buf = '';
    let event = '';
    let data = [];
    let id = null;
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      arm();
      buf += decoder.decode(value, {stream: true});
      const eol = /\r\n|\r|\n/g;
      let start = 0;
      let m;
      while ((m = eol.exec(buf)) !== null) {
        // a lone \r at the very end may be the first half of \r\n: wait for more
        if (m[0] === '\r' && m.index + 1 === buf.length) break;
        const line = buf.slice(start, m.index);
        start = m.index + m[0].length;
        if (line === '') {
          if (id !== null) this.lastId = id;
          if (data.length) this.dispatch(event || 'message', data.join('\n'), id ?? this.lastId);
          event = ''; data = []; id = null;
          continue;
        }
        if (line.startsWith(':')) continue; // a comment: the heartbeat
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'event') event = val;
        else if (field === 'data') data.push(val);
        else if (field === 'id' && !val.includes('\0')) id = val;
        // `retry:` is ignored: the backoff above is the console's own
      }
      buf = buf.slice(start);
    }
  }

  dispatch(event, text, id) {
    let data;
    try { data = JSON.parse(text); } catch { data = text; }
    this.eventsSeen++;
    this.onEvent?.({id, event, data});
  }
}
