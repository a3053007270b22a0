import 'asciinema-player/dist/bundle/asciinema-player.css';
import { create } from 'asciinema-player';
import type { PlayerOptions, ReplayEngine } from './cast-player.js';

/**
 * asciinema-player on a recording's text: play/pause, seek bar and its keys (space, ←/→,
 * 0–9, "." to step) come with it. Loaded on demand, only by the replay view.
 */
export function asciinemaEngine(stage: HTMLElement, recording: string, options: PlayerOptions): ReplayEngine {
  const host = document.createElement('div');
  host.className = 'asciinema-host';
  stage.append(host);
  const player = create({ data: recording }, host, {
    autoPlay: options.autoPlay,
    preload: true,
    speed: options.speed,
    // Infinity keeps every pause, even when the header sets idle_time_limit.
    idleTimeLimit: options.idleTimeLimit ?? Infinity,
    fit: 'both',
    controls: true,
    terminalFontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
    ...(options.startAt > 0 ? { startAt: options.startAt, poster: `npt:${options.startAt}` } : {}),
  });
  let playing = options.autoPlay;
  player.addEventListener('playing', () => (playing = true));
  player.addEventListener('play', () => (playing = true));
  player.addEventListener('pause', () => (playing = false));
  player.addEventListener('ended', () => (playing = false));
  return {
    el: host,
    get playing() {
      return playing;
    },
    currentTime: async () => player.getCurrentTime(),
    // The wrapper holds the player's keyboard handler.
    focus: () => host.querySelector<HTMLElement>('.ap-wrapper')?.focus(),
    dispose: () => {
      player.dispose();
      host.remove();
    },
  };
}
