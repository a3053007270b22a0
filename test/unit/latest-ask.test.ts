import { describe, expect, it } from 'vitest';
import { LatestAsk } from '../../client/web/console/latest-ask.js';

/** A load answered when the test says so. */
function held<T>(): { load: () => Promise<T>; answer: (value: T) => void; fail: (err: Error) => void } {
  let answer!: (value: T) => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    answer = res;
    fail = rej;
  });
  return { load: () => promise, answer, fail };
}

/** A LatestAsk whose clock the test sets, recording what it was told to show and tell. */
function recorded() {
  const seen: string[] = [];
  const clock = { now: 1_000 };
  const ask = new LatestAsk<string>(
    {
      show: (v) => seen.push(`show ${v}`),
      failed: (err, newer) => seen.push(`${newer ? 'tell' : 'keep quiet about'} ${(err as Error).message}`),
    },
    () => clock.now,
  );
  return { ask, seen, clock };
}

describe('LatestAsk', () => {
  it('shows answers in the order they come when they come in the order asked', async () => {
    const { ask, seen } = recorded();
    expect(await ask.ask(() => Promise.resolve('a'))).toBe(true);
    expect(await ask.ask(() => Promise.resolve('b'))).toBe(true);
    expect(seen).toEqual(['show a', 'show b']);
  });

  it('drops the answer to an earlier ask that comes after a later one was shown', async () => {
    const { ask, seen } = recorded();
    const first = held<string>();
    const second = held<string>();
    const firstDone = ask.ask(first.load);
    const secondDone = ask.ask(second.load);
    second.answer('new');
    expect(await secondDone).toBe(true);
    first.answer('old');
    expect(await firstDone).toBe(false);
    expect(seen).toEqual(['show new']);
  });

  it('shows the answer to an earlier ask that comes first, then the later one over it', async () => {
    const { ask, seen } = recorded();
    const first = held<string>();
    const second = held<string>();
    const firstDone = ask.ask(first.load);
    const secondDone = ask.ask(second.load);
    first.answer('old');
    expect(await firstDone).toBe(true);
    second.answer('new');
    expect(await secondDone).toBe(true);
    expect(seen).toEqual(['show old', 'show new']);
  });

  it('tells the failure of an ask made after the answer shown, and not of one made before it', async () => {
    const { ask, seen } = recorded();
    const early = held<string>();
    const late = held<string>();
    const later = held<string>();
    const earlyDone = ask.ask(early.load);
    const lateDone = ask.ask(late.load);
    const laterDone = ask.ask(later.load);
    late.answer('shown');
    await lateDone;
    early.fail(new Error('early down'));
    expect(await earlyDone).toBe(true);
    later.fail(new Error('later down'));
    expect(await laterDone).toBe(true);
    expect(seen).toEqual(['show shown', 'keep quiet about early down', 'tell later down']);
  });

  it('tells a failure when nothing was shown yet', async () => {
    const { ask, seen } = recorded();
    await ask.ask(() => Promise.reject(new Error('down')));
    expect(seen).toEqual(['tell down']);
  });

  it('is older than any age until an answer is shown, and a failure leaves it so', async () => {
    const { ask } = recorded();
    expect(ask.olderThan(30_000)).toBe(true);
    await ask.ask(() => Promise.reject(new Error('down')));
    expect(ask.olderThan(30_000)).toBe(true);
  });

  it('counts the age of what is shown from when it was asked for, not answered', async () => {
    const { ask, clock } = recorded();
    const slow = held<string>();
    const done = ask.ask(slow.load);
    clock.now += 20_000;
    slow.answer('list');
    await done;
    clock.now += 9_999;
    expect(ask.olderThan(30_000)).toBe(false);
    clock.now += 1;
    expect(ask.olderThan(30_000)).toBe(true);
  });

  it('keeps the age of the answer shown when an earlier ask\'s answer is dropped', async () => {
    const { ask, clock } = recorded();
    const first = held<string>();
    const firstDone = ask.ask(first.load);
    clock.now += 20_000;
    await ask.ask(() => Promise.resolve('new'));
    first.answer('old');
    await firstDone;
    clock.now += 29_999;
    expect(ask.olderThan(30_000)).toBe(false);
  });

  it('takes a clock set back past the ask as older than any age', async () => {
    const { ask, clock } = recorded();
    await ask.ask(() => Promise.resolve('list'));
    clock.now -= 1;
    expect(ask.olderThan(30_000)).toBe(true);
  });

  it('drops the answers and failures of asks made before forget, and counts nothing as shown after it', async () => {
    const { ask, seen, clock } = recorded();
    expect(await ask.ask(() => Promise.resolve('a'))).toBe(true);
    const answered = held<string>();
    const failing = held<string>();
    const answeredDone = ask.ask(answered.load);
    const failingDone = ask.ask(failing.load);
    ask.forget();
    expect(ask.olderThan(60_000)).toBe(true);
    answered.answer('before sign-out');
    failing.fail(new Error('before sign-out'));
    expect([await answeredDone, await failingDone]).toEqual([false, false]);
    clock.now += 1;
    expect(await ask.ask(() => Promise.resolve('next user'))).toBe(true);
    expect(ask.olderThan(60_000)).toBe(false);
    expect(seen).toEqual(['show a', 'show next user']);
  });
});
