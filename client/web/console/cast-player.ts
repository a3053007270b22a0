import { Terminal } from '@xterm/xterm';
import { type Cast, type CastEvent, clock, limitIdle, replaySize } from './cast.js';
import { h } from './dom.js';

export interface PlayerOptions {
  speed: number;
  /** Pauses longer than this (seconds) are shortened to it; undefined keeps them. */
  idleTimeLimit: number | undefined;
  startAt: number;
  autoPlay: boolean;
}

/** What the replay view needs of a player, whichever it is. */
export interface ReplayEngine {
  readonly el: HTMLElement;
  currentTime(): Promise<number>;
  readonly playing: boolean;
  focus(): void;
  dispose(): void;
}

/**
 * A small asciicast player on xterm.js, for pages where asciinema-player cannot run (its
 * terminal emulator is WebAssembly, which a Content-Security-Policy without
 * 'wasm-unsafe-eval' forbids): play/pause, seek, speed and idle limit. Output ("o" and
 * Entry's "e") and resizes ("r") are played; input and markers are not shown.
 */
export class CastPlayer implements ReplayEngine {
  readonly el: HTMLElement;
  private readonly terminal: Terminal;
  private readonly events: CastEvent[];
  private readonly duration: number;
  private readonly toggle: HTMLButtonElement;
  private readonly range: HTMLInputElement;
  private readonly time: HTMLElement;
  /** Index of the next event to write. */
  private next = 0;
  /** Media time (seconds) at `wallStart`, and when playback last (re)started. */
  private mediaStart = 0;
  private wallStart = 0;
  private paused = true;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private clockTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly cast: Cast,
    private readonly options: PlayerOptions,
  ) {
    this.events = limitIdle(cast.events, options.idleTimeLimit);
    this.duration = this.events.at(-1)?.[0] ?? 0;
    this.toggle = h('button', { type: 'button', className: 'replay-toggle', textContent: '▶' });
    this.toggle.setAttribute('aria-label', 'Play');
    this.range = h('input', { type: 'range', className: 'replay-seek' });
    Object.assign(this.range, { min: '0', max: String(this.duration), step: '0.1', value: '0' });
    this.range.setAttribute('aria-label', 'Position');
    this.time = h('span', { className: 'replay-time' });
    const screen = h('div', { className: 'replay-screen' });
    this.el = h('div', { className: 'cast-player' }, screen, h('div', { className: 'replay-controls' }, this.toggle, this.time, this.range));
    this.el.tabIndex = -1;
    this.terminal = new Terminal({
      cols: cast.width,
      rows: cast.height,
      disableStdin: true,
      cursorBlink: false,
      scrollback: 0,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 13,
      theme: { background: '#101418', foreground: '#d8dee4' },
    });
    this.terminal.open(screen);

    this.toggle.addEventListener('click', () => (this.paused ? this.play() : this.pause()));
    this.range.addEventListener('input', () => this.seek(Number(this.range.value)));
    this.el.addEventListener('keydown', (e) => {
      if (e.target === this.range && e.key !== ' ') return;
      if (e.key === ' ') this.paused ? this.play() : this.pause();
      else if (e.key === 'ArrowRight') this.seek(this.position() + 5);
      else if (e.key === 'ArrowLeft') this.seek(this.position() - 5);
      else return;
      e.preventDefault();
    });
    this.seek(options.startAt);
    if (options.autoPlay) this.play();
  }

  get playing(): boolean {
    return !this.paused;
  }

  currentTime(): Promise<number> {
    return Promise.resolve(this.position());
  }

  focus(): void {
    this.el.focus();
  }

  play(): void {
    if (!this.paused) return;
    if (this.position() >= this.duration) this.seek(0);
    this.paused = false;
    this.wallStart = performance.now();
    this.toggle.textContent = '❚❚';
    this.toggle.setAttribute('aria-label', 'Pause');
    this.clockTimer = setInterval(() => this.showTime(), 250);
    this.schedule();
  }

  pause(): void {
    if (this.paused) return;
    this.mediaStart = this.position();
    this.paused = true;
    clearTimeout(this.timer);
    clearInterval(this.clockTimer);
    this.toggle.textContent = '▶';
    this.toggle.setAttribute('aria-label', 'Play');
    this.showTime();
  }

  /** Jumps to `t` seconds: backwards means replaying from the start, as a terminal has no undo. */
  seek(t: number): void {
    const to = Math.min(Math.max(0, t), this.duration);
    if (to < this.position() || this.next === 0) {
      this.terminal.reset();
      this.terminal.resize(this.cast.width, this.cast.height);
      this.next = 0;
    }
    this.mediaStart = to;
    this.wallStart = performance.now();
    this.writeUntil(to);
    this.showTime();
    if (!this.paused) this.schedule();
  }

  dispose(): void {
    this.paused = true;
    clearTimeout(this.timer);
    clearInterval(this.clockTimer);
    this.terminal.dispose();
    this.el.remove();
  }

  private position(): number {
    if (this.paused) return this.mediaStart;
    return Math.min(this.duration, this.mediaStart + ((performance.now() - this.wallStart) / 1000) * this.options.speed);
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.paused) return;
    const now = this.position();
    this.writeUntil(now);
    const upcoming = this.events[this.next];
    if (!upcoming) {
      this.pause();
      this.mediaStart = this.duration;
      this.showTime();
      return;
    }
    this.timer = setTimeout(() => this.schedule(), Math.max(0, ((upcoming[0] - now) * 1000) / this.options.speed));
  }

  private writeUntil(t: number): void {
    while (this.next < this.events.length && (this.events[this.next] as CastEvent)[0] <= t) {
      const [, code, data] = this.events[this.next] as CastEvent;
      this.next++;
      if (code === 'o' || code === 'e') this.terminal.write(data);
      else if (code === 'r') {
        const [cols, rows] = data.split('x').map(Number);
        if (cols && rows) this.terminal.resize(...replaySize(cols, rows));
      }
    }
  }

  private showTime(): void {
    const now = this.position();
    this.range.value = String(now);
    this.time.textContent = `${clock(now)} / ${clock(this.duration)}`;
  }
}
