import { describe, expect, it } from 'vitest';
import { tabLabel } from '../../client/web/console/tab-label.js';

describe('tabLabel', () => {
  it('names the first tab of a container by the container', () => {
    expect(tabLabel('shop/web/1', [])).toBe('shop/web/1');
    expect(tabLabel('shop/web/1', ['shop/web/2', 'watch alice@shop/web/1'])).toBe('shop/web/1');
  });

  it('numbers further tabs of the same container from 2', () => {
    expect(tabLabel('shop/web/1', ['shop/web/1'])).toBe('shop/web/1 (2)');
    expect(tabLabel('shop/web/1', ['shop/web/1', 'shop/web/1 (2)'])).toBe('shop/web/1 (3)');
  });

  it('gives no open tab\'s name again once an earlier tab has closed', () => {
    // Opened twice, the first closed: the next is not a second "(2)".
    expect(tabLabel('shop/web/1', ['shop/web/1 (2)'])).toBe('shop/web/1');
    expect(tabLabel('shop/web/1', ['shop/web/1 (2)', 'shop/web/1'])).toBe('shop/web/1 (3)');
    expect(tabLabel('shop/web/1', ['shop/web/1', 'shop/web/1 (3)'])).toBe('shop/web/1 (2)');
  });
});
