import { describe, expect, it } from 'vitest';
import { closeNames, didYouMean, didYouMeanProfile, editDistance, leading, notFoundSuggestion } from '../../client/cli/suggest.js';

describe('names close to a misspelt one', () => {
  it('counts a swap of two neighbours as one edit', () => {
    expect(editDistance('wbe', 'web')).toBe(1);
    expect(editDistance('web', 'web')).toBe(0);
    expect(editDistance('', 'ls')).toBe(2);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('allows one edit in a short name, two in a longer one, and any change of case', () => {
    expect(closeNames('lss', ['ls', 'login', 'logout'])).toEqual(['ls']);
    expect(closeNames('wb', ['web', 'worker', 'db'])).toEqual(['db', 'web']);
    expect(closeNames('shpo-apj', ['shop-api', 'shop-web', 'other'])).toEqual(['shop-api']);
    expect(closeNames('Shop', ['shop'])).toEqual(['shop']);
    expect(closeNames('xyz', ['shop', 'web'])).toEqual([]);
  });

  it('phrases them as one question of up to three, opening a sentence or not, and -b NAME for a profile', () => {
    expect(didYouMean(['web'])).toBe('did you mean web?');
    expect(didYouMean(['a', 'b', 'c', 'd'])).toBe('did you mean a or b or c?');
    expect(didYouMean(['list', 'ls'], { prefix: 'enter broker ', capital: true })).toBe('Did you mean enter broker list or enter broker ls?');
    expect(didYouMeanProfile('prod')).toBe('did you mean -b prod?');
    expect(didYouMeanProfile('prod', { capital: true })).toBe('Did you mean -b prod?');
    expect(didYouMean([])).toBe('');
    expect(leading(didYouMean(['web']))).toBe('did you mean web? ');
    expect(leading(didYouMean([]))).toBe('');
  });
});

describe('what exists near a target that was not found', () => {
  const known = [
    { app: 'shop', proc: 'web', instance: '2' },
    { app: 'shop', proc: 'web', instance: '10' },
    { app: 'shop', proc: 'worker', instance: '1' },
    { app: 'blog', proc: 'web', instance: '1' },
  ];

  it('lists the instances of a proc in numeric order', () => {
    expect(notFoundSuggestion({ app: 'shop', proc: 'web', instance: '3' }, known)).toBe('shop/web has instances 2, 10 (`enter ls shop` shows their state).');
  });

  it("names the app's procs, and the close one first", () => {
    expect(notFoundSuggestion({ app: 'shop', proc: 'wbe', instance: '1' }, known)).toBe('shop has no proc wbe: did you mean web? its procs are web, worker.');
    expect(notFoundSuggestion({ app: 'shop', proc: 'cron', instance: '1' }, known)).toBe('shop has no proc cron: its procs are web, worker.');
  });

  it('suggests an app with a close name, or points to enter ls', () => {
    expect(notFoundSuggestion({ app: 'shpo', proc: 'web', instance: '1' }, known)).toBe('No app named shpo among those you may enter: did you mean shop? `enter ls` lists them.');
    expect(notFoundSuggestion({ app: 'nothing', proc: 'web', instance: '1' }, [])).toBe('No app named nothing among those you may enter: `enter ls` lists them.');
  });

  it('names nothing near a target that exists: what was not found is inside it (a container of its pod)', () => {
    expect(notFoundSuggestion({ app: 'shop', proc: 'web', instance: '2' }, known)).toBeUndefined();
  });

  it('cuts a long list short', () => {
    const many = Array.from({ length: 12 }, (_, i) => ({ app: 'a', proc: 'p', instance: String(i + 1) }));
    expect(notFoundSuggestion({ app: 'a', proc: 'p', instance: '99' }, many)).toBe('a/p has instances 1, 2, 3, 4, 5, 6, 7, 8 and 4 more (`enter ls a` shows their state).');
  });
});
