import { type ITerminalOptions, Terminal } from '@xterm/xterm';

/** Asked with a paste's text before it reaches the terminal: true when dealt with, not to be pasted. */
export type BeforePaste = (text: string) => boolean;

/**
 * An xterm.js terminal whose paste() asks `beforePaste` first: right click's (below), and an
 * embedding page's through the handle's `terminal`. The browser's own pastes reach xterm without
 * paste(): bindClipboard asks for those.
 */
export class PasteCheckedTerminal extends Terminal {
  constructor(
    options: ITerminalOptions,
    readonly beforePaste: BeforePaste,
  ) {
    super(options);
  }

  override paste(text: string): void {
    if (!this.beforePaste(text)) super.paste(text);
  }
}

/**
 * Copy and paste beyond the browser's own (Cmd+C / Cmd+V on macOS; elsewhere Ctrl+C and Ctrl+V
 * are the shell's keys, ^C and ^V): Ctrl+Shift+C / Ctrl+Shift+V as in desktop terminals, and
 * right click, which copies the selection when there is one and pastes otherwise. Every paste
 * is put to the terminal's `beforePaste` first. Returns a cleanup function.
 */
export function bindClipboard(terminal: PasteCheckedTerminal, element: HTMLElement): () => void {
  terminal.attachCustomKeyEventHandler((event) => {
    if (event.type !== 'keydown' || !event.ctrlKey || !event.shiftKey || event.altKey || event.metaKey) return true;
    if (event.code === 'KeyC') {
      if (terminal.hasSelection()) void writeClipboard(terminal.getSelection());
      event.preventDefault();
      return false;
    }
    // Leaves the key to the browser, whose paste event comes to onPaste below, then to xterm.
    if (event.code === 'KeyV') return false;
    return true;
  });
  const onContextMenu = (event: MouseEvent): void => {
    const clipboard = navigator.clipboard;
    if (!clipboard) return;
    event.preventDefault();
    if (terminal.hasSelection()) {
      void writeClipboard(terminal.getSelection());
      terminal.clearSelection();
    } else {
      clipboard.readText().then(
        (text) => text && terminal.paste(text),
        () => undefined, // permission refused: nothing to paste
      );
    }
    terminal.focus();
  };
  // The browser's pastes (keys, its menu, a middle click), taken as it dispatches them to the
  // terminal, before xterm's own listener passes them on as typing.
  const onPaste = (event: ClipboardEvent): void => {
    if (!terminal.beforePaste(event.clipboardData?.getData('text/plain') ?? '')) return;
    event.preventDefault();
    event.stopPropagation();
  };
  element.addEventListener('contextmenu', onContextMenu);
  element.addEventListener('paste', onPaste, { capture: true });
  return () => {
    element.removeEventListener('contextmenu', onContextMenu);
    element.removeEventListener('paste', onPaste, { capture: true });
  };
}

async function writeClipboard(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Not a secure context or no permission: the selection stays for the browser's own copy.
  }
}
