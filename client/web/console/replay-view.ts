import { ApiError, type BrokerApi } from '../api.js';
import { type Cast, clampSizes, completeLines, parseCast } from './cast.js';
import { CastPlayer, type PlayerOptions, type ReplayEngine } from './cast-player.js';
import { h } from './dom.js';
import type { TabContent } from './terminal-tabs.js';

const SPEEDS = [0.5, 1, 2, 4, 8];
/** Idle limits offered, in seconds; 0 keeps every pause. */
const IDLE_LIMITS = [0, 0.5, 1, 2, 5];
const DEFAULT_IDLE_LIMIT = 2;

/**
 * Whether this page may compile WebAssembly, which asciinema-player's terminal emulator is.
 * A Content-Security-Policy without 'wasm-unsafe-eval' (or 'unsafe-eval') forbids it.
 */
function webAssemblyAllowed(): boolean {
  try {
    new WebAssembly.Module(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));
    return true;
  } catch {
    return false;
  }
}

/**
 * A session's recording in a tab: fetched with the admin's token, played by asciinema-player
 * (or, where the page may not run WebAssembly, by a small xterm.js player), with speed and
 * idle-limit choices and a download link. Emits `replay-state` (connecting, open, closed).
 */
export function replayTab(api: BrokerApi, session: string, title: string, heldBy?: string): TabContent {
  const speed = select('Speed', SPEEDS.map((s) => [String(s), `${s}×`]), '1');
  const idle = select('Skip pauses over', IDLE_LIMITS.map((s) => [String(s), s ? `${s} s` : 'never']), String(DEFAULT_IDLE_LIMIT));
  const download = h('button', { type: 'button', className: 'quiet', textContent: 'Download .cast' });
  download.disabled = true;
  const note = h('span', { className: 'replay-note' });
  const bar = h('div', { className: 'replay-bar' }, h('span', { className: 'replay-title', textContent: title, title: `session ${session}` }), speed.label, idle.label, download, note);
  const stage = h('div', { className: 'replay-stage' }, h('p', { className: 'replay-status', textContent: 'Loading the recording…' }));
  const el = h('div', { className: 'replay' }, bar, stage);
  el.dataset['session'] = session;
  // Focusable, so that the keyboard comes here when the tab opens, and on to the player.
  el.tabIndex = -1;

  let recording = '';
  // Parsed once, when it loads: what the basic player plays, every time it starts.
  let cast: Cast | undefined;
  let engine: ReplayEngine | undefined;
  let disposed = false;
  let useAsciinema = true;
  const state = (s: string) => el.dispatchEvent(new CustomEvent('replay-state', { detail: { state: s } }));

  const options = (startAt: number, autoPlay: boolean): PlayerOptions => ({
    speed: Number(speed.input.value),
    idleTimeLimit: Number(idle.input.value) || undefined,
    startAt,
    autoPlay,
  });

  const mount = async (startAt: number, autoPlay: boolean) => {
    engine?.dispose();
    engine = undefined;
    if (useAsciinema) {
      const { asciinemaEngine } = await import('./asciinema.js');
      if (disposed) return;
      engine = asciinemaEngine(stage, recording, options(startAt, autoPlay));
    } else {
      engine = new CastPlayer(cast ?? parseCast(recording), options(startAt, autoPlay));
      stage.append(engine.el);
    }
    stage.dataset['player'] = useAsciinema ? 'asciinema' : 'xterm';
  };

  // Speed and idle limit are fixed when a player starts: a change starts a new one where the
  // old one was.
  const restart = async () => {
    if (!engine) return;
    const at = await engine.currentTime();
    const wasPlaying = engine.playing;
    await mount(at, wasPlaying);
    engine?.focus();
  };
  const restartOrSay = () =>
    restart().catch((err: unknown) => {
      stage.replaceChildren(h('p', { className: 'replay-status error', textContent: `Could not start the player: ${(err as Error).message}` }));
    });
  speed.input.addEventListener('change', () => void restartOrSay());
  idle.input.addEventListener('change', () => void restartOrSay());

  download.addEventListener('click', () => {
    const url = URL.createObjectURL(new Blob([recording], { type: 'application/x-asciicast' }));
    const a = h('a');
    a.href = url;
    a.download = `${session}.cast`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });

  void (async () => {
    state('connecting');
    const failed = (message: string) => {
      stage.replaceChildren(h('p', { className: 'replay-status error', textContent: message }));
      state('closed');
    };
    try {
      recording = clampSizes(completeLines(await api.recording(session)));
      cast = parseCast(recording);
    } catch (err) {
      if (disposed) return;
      // Each broker serves the recordings in its own --recordings-dir.
      const where = err instanceof ApiError && err.status === 404 && heldBy ? ` (the session ran on broker ${heldBy})` : '';
      failed(`Could not load the recording: ${(err as Error).message}${where}`);
      return;
    }
    if (disposed) return;
    useAsciinema = webAssemblyAllowed();
    if (!useAsciinema) {
      note.textContent = 'basic player';
      note.title = "asciinema-player needs WebAssembly, which this page's Content-Security-Policy does not allow ('wasm-unsafe-eval')";
    }
    stage.replaceChildren();
    download.disabled = false;
    try {
      await mount(0, true);
    } catch (err) {
      if (!disposed) failed(`Could not start the player: ${(err as Error).message}`);
      return;
    }
    state('open');
    const focused = document.activeElement;
    if (focused === el || el.contains(focused)) engine?.focus();
  })();

  return {
    el,
    focus: () => (engine ? engine.focus() : el.focus()),
    dispose: () => {
      disposed = true;
      engine?.dispose();
    },
  };
}

function select(label: string, options: Array<[string, string]>, value: string): { label: HTMLLabelElement; input: HTMLSelectElement } {
  const input = h('select');
  input.append(...options.map(([v, text]) => Object.assign(h('option', { textContent: text }), { value: v })));
  input.value = value;
  return { label: h('label', { className: 'replay-option' }, `${label} `, input), input };
}
