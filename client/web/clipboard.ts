import type { Terminal } from '@xterm/xterm';

/**
 * Copy and paste beyond the browser's own (Cmd+C / Cmd+V on macOS; elsewhere Ctrl+C and Ctrl+V
 * are the shell's keys, ^C and ^V): Ctrl+Shift+C / Ctrl+Shift+V as in desktop terminals, and
 * right click, which copies the selection when there is one and pastes otherwise. Returns a
 * cleanup function.
 */
export function bindClipboard(terminal: Terminal, element: HTMLElement): () => void {
  terminal.attachCustomKeyEventHandler((event) => {
    if (event.type !== 'keydown' || !event.ctrlKey || !event.shiftKey || event.altKey || event.metaKey) return true;
    if (event.code === 'KeyC') {
      if (terminal.hasSelection()) void writeClipboard(terminal.getSelection());
      event.preventDefault();
      return false;
    }
    // Leaves the key to the browser, whose paste event xterm then handles itself.
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
  element.addEventListener('contextmenu', onContextMenu);
  return () => element.removeEventListener('contextmenu', onContextMenu);
}

async function writeClipboard(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Not a secure context or no permission: the selection stays for the browser's own copy.
  }
}
