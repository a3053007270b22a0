import xtermCss from '@xterm/xterm/css/xterm.css?inline';

// Zero specificity (:where) so that any rule of the page sizing the element wins.
const OWN_CSS = `
:where(entry-terminal) { display: block; height: 24rem; background: #101418; }
:where(entry-terminal[hidden]) { display: none; }
:where(.entry-terminal-screen) { width: 100%; height: 100%; overflow: hidden; }
:where(.entry-terminal-screen) .xterm { height: 100%; padding: 4px 0 0 6px; box-sizing: border-box; }
/* Shown over the terminal while a broken connection is being resumed. */
:where(.entry-terminal-screen) { position: relative; }
:where(.entry-terminal-overlay) { position: absolute; inset: 0; z-index: 10; display: flex; align-items: center; justify-content: center; background: rgba(16, 20, 24, 0.7); color: #d8dee4; font: 14px/1.4 system-ui, sans-serif; }
/* The screen div carries the theme's background, so that the strip below the last row matches. */
:where(.entry-terminal-screen) .xterm .xterm-viewport { background-color: transparent; }
`;

/**
 * Puts xterm's stylesheet and ours into the document once, so that the module is a single
 * file to import. Prepended to <head>: the page's own rules come later and win.
 * (xterm's renderer adds <style> elements of its own, so a CSP must allow inline styles anyway.)
 */
export function injectStyles(doc: Document = document): void {
  if (doc.querySelector('style[data-entry-terminal]')) return;
  const style = doc.createElement('style');
  style.dataset['entryTerminal'] = '';
  style.textContent = xtermCss + OWN_CSS;
  doc.head.prepend(style);
}
