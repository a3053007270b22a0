export type ViewName = 'containers' | 'sessions' | 'audit';

export interface ShortcutActions {
  /** The filter of the view in front. */
  focusSearch(): void;
  stepTab(delta: number): void;
  closeTab(): void;
  /** False when the view is not offered (Sessions and Audit to a user not an admin). */
  showView(view: ViewName): boolean;
}

function typingIn(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement;
}

const VIEW_KEYS: Record<string, ViewName> = { KeyC: 'containers', KeyS: 'sessions', KeyA: 'audit' };

/**
 * Console-wide keys. Alt+Shift chords work even inside a terminal: they are caught in the
 * capture phase, before xterm sees them, and are rarely needed by a shell. "/" works where
 * nothing is being typed.
 */
export function bindShortcuts(actions: ShortcutActions, enabled: () => boolean): void {
  window.addEventListener(
    'keydown',
    (e) => {
      if (!enabled()) return;
      let handled = true;
      if (e.altKey && e.shiftKey && !e.ctrlKey && !e.metaKey) {
        const view = VIEW_KEYS[e.code];
        if (e.code === 'KeyF') actions.focusSearch();
        else if (e.code === 'ArrowRight') actions.stepTab(1);
        else if (e.code === 'ArrowLeft') actions.stepTab(-1);
        else if (e.code === 'KeyW') actions.closeTab();
        // A view key with no view behind it is the shell's (Alt+Shift+S is ESC S there).
        else if (view) handled = actions.showView(view);
        else handled = false;
      } else if (e.key === '/' && !e.altKey && !e.ctrlKey && !e.metaKey && !typingIn(e.target)) {
        actions.focusSearch();
      } else {
        handled = false;
      }
      if (handled) {
        e.preventDefault();
        e.stopPropagation();
      }
    },
    { capture: true },
  );
}
