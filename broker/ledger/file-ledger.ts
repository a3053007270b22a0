import { mkdir, readdir, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import type { Server } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { AliveSockets, listenAlive, probeAlive } from './alive-socket.js';
import { currentOwner, fromEarlierBoot, judgeable, type Owner } from './owner.js';
import { entryPlace, isSessionId, type LedgerEntry, parseEntry, placeKey, type SessionLedger } from './session-ledger.js';

/**
 * Sessions whose processes may still be running, on disk: a file per session from before its
 * process starts until its clean-up is done, in a directory of the broker process that holds it
 * (`<state dir>/sessions/<owner>/`, see owner.ts). A broker that dies without ending its
 * sessions (`kill -9`, the OOM killer, a crash) leaves its files behind; a broker that starts
 * later with the same state directory claims them (`claimOrphans`) and ends those processes.
 *
 * Writes are not flushed to the disk: a broker's death keeps what it wrote (the kernel holds it),
 * and a machine's restart ends the processes too.
 */
export class FileLedger implements SessionLedger {
  readonly kind = 'file';

  private constructor(
    /** `<state dir>/sessions`. */
    private readonly root: string,
    private readonly owner: Owner,
    private readonly log: Logger,
    /** Where the brokers' sockets are reached (see alive-socket.ts). */
    private readonly sockets: AliveSockets,
    /** This broker's proof of life. */
    private readonly alive: Server,
    /** The hosts and clusters this broker has (placeKey): it claims only what it can end. */
    private readonly places: ReadonlySet<string> | undefined,
  ) {}

  /** This broker's own directory of entries. */
  private get dir(): string {
    return join(this.root, this.owner.name);
  }

  /**
   * The ledger under `stateDir`, or undefined (said in the log) when it cannot be kept there.
   * With `places`, a dead broker's entries on other hosts and clusters are left for a broker
   * that has them (several brokers may share one state directory, each with its own hosts).
   */
  static async open(stateDir: string, log: Logger, places?: readonly string[]): Promise<FileLedger | undefined> {
    try {
      const root = join(stateDir, 'sessions');
      const owner = currentOwner();
      await mkdir(root, { recursive: true, mode: 0o700 });
      // The socket before the directory: no other broker may see the directory and no socket.
      const sockets = AliveSockets.open(root);
      const alive = await listenAlive(sockets.pathOf(owner.name)).catch((err: unknown) => {
        sockets.close();
        throw err;
      });
      const ledger = new FileLedger(root, owner, log, sockets, alive, places && new Set(places));
      await mkdir(ledger.dir, { recursive: true, mode: 0o700 });
      return ledger;
    } catch (err) {
      log.warn('session ledger off: the processes of sessions open when this broker dies are not ended by the next one', { stateDir, error: err as Error });
      return undefined;
    }
  }

  /**
   * Records a session before its process starts, or again with what changed. Never throws: a
   * session does not depend on it. Written beside the entry and renamed over it: a write cut
   * short (a full disk, the broker dying) leaves the entry as it was, not a truncated file the
   * next broker drops along with the processes it names.
   */
  async add(entry: LedgerEntry): Promise<void> {
    if (!isSessionId(entry.session)) return;
    const file = join(this.dir, `${entry.session}.json`);
    // Not an ENTRY_FILE name: never claimed or read as an entry.
    const next = `${file}.next`;
    const write = async () => {
      await writeFile(next, JSON.stringify(entry), { mode: 0o600 });
      await rename(next, file);
    };
    try {
      await write().catch(async (err: NodeJS.ErrnoException) => {
        // The directory removed from under it (by hand, or by a broker that misjudged this one): made again.
        if (err.code !== 'ENOENT') throw err;
        await mkdir(this.dir, { recursive: true, mode: 0o700 });
        await write();
      });
    } catch (err) {
      await unlink(next).catch(() => undefined);
      this.log.warn('session not in the ledger: if this broker dies, its processes are left running', { session: entry.session, error: err as Error });
    }
  }

  /** Forgets a session whose processes are known to be gone. */
  async remove(session: string): Promise<void> {
    if (!isSessionId(session)) return;
    await unlink(join(this.dir, `${session}.json`)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') this.log.warn('session not removed from the ledger', { session, error: err });
    });
  }

  /**
   * Takes over the entries of brokers that are gone: each file is moved into this broker's own
   * directory (a rename: of two brokers claiming at once, one gets it), and the emptied
   * directory is removed. Returns the entries claimed now; files that are not entries are
   * dropped, and entries on hosts and clusters this broker does not have are left where they are.
   */
  async claimOrphans(): Promise<LedgerEntry[]> {
    const claimed: LedgerEntry[] = [];
    for (const owner of await readdir(this.root)) {
      if (owner === this.owner.name || !judgeable(owner) || !(await this.gone(owner))) continue;
      const from = join(this.root, owner);
      let files: string[];
      try {
        files = await readdir(from);
      } catch {
        continue;
      }
      for (const file of files) {
        // A new version its broker died before renaming into place: the entry itself where there
        // is none (its first write), else only a leftover (the entry before it stands).
        const next = NEXT_FILE.exec(file);
        if (next) {
          if (files.includes(next[1]!)) {
            await unlink(join(from, file)).catch(() => undefined);
            continue;
          }
        } else if (!ENTRY_FILE.test(file)) continue;
        // Read where it lies: one on a host this broker does not have stays there, unclaimed.
        let text: string;
        try {
          text = await readFile(join(from, file), 'utf8');
        } catch (err) {
          // A read that failed (EMFILE, EIO) says nothing of the entry, whose processes may run:
          // it stays for the next sweep, and the directory with it. (Gone: another broker took it.)
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn('ledger entry not readable now: left for the next sweep', { file: join(from, file), error: err as Error });
          continue;
        }
        const place = entryPlace(text);
        if (this.places && place && !this.places.has(placeKey(place.backend, place.host))) continue;
        // Of two brokers claiming at once, the one whose rename succeeds has it.
        const to = join(this.dir, next ? next[1]! : file);
        try {
          await rename(join(from, file), to);
        } catch {
          continue;
        }
        const entry = parseEntry(text);
        if (entry) claimed.push(entry);
        else {
          this.log.warn('unreadable ledger entry dropped', { file: join(from, file) });
          await unlink(to).catch(() => undefined);
        }
      }
      // The socket and the stopped mark go with the last entry only: a directory left (an entry
      // that could not be moved or read) keeps what says its broker is gone.
      if (!(await readdir(from).catch(() => [] as string[])).some((f) => ENTRY_FILE.test(f) || NEXT_FILE.test(f))) {
        await unlink(join(from, STOPPED_FILE)).catch(() => undefined);
      }
      const removed = await rmdir(from).then(() => true, () => false);
      if (removed) await unlink(this.sockets.pathOf(owner)).catch(() => undefined);
    }
    return claimed;
  }

  /**
   * Whether another broker of this host is gone: its socket refuses. Without a socket it counts
   * as alive unless it is of an earlier boot or its directory says it stopped (see close): /proc
   * here cannot speak for a broker in another
   * PID namespace (a container of the same host name), whose PID and start time are not those
   * this /proc shows.
   */
  private async gone(owner: string): Promise<boolean> {
    const probe = await probeAlive(this.sockets.pathOf(owner));
    if (probe !== 'no-socket') return probe === 'dead';
    return fromEarlierBoot(owner) || (await readFile(join(this.root, owner, STOPPED_FILE)).then(() => true, () => false));
  }

  /** On a clean stop: this broker's directory goes if nothing is left in it. */
  async close(): Promise<void> {
    const removed = await rmdir(this.dir).then(() => true, () => false);
    // Entries left (sessions whose processes could not be ended) are for the next broker, which
    // finds no socket once this one's is closed: the directory says this broker stopped.
    if (!removed) {
      await writeFile(join(this.dir, STOPPED_FILE), '').catch((err: unknown) =>
        this.log.warn('could not mark the session ledger as left by a stopped broker: its entries wait for the next boot', { dir: this.dir, error: err as Error }),
      );
    }
    await new Promise<void>((resolve) => this.alive.close(() => resolve()));
    await unlink(this.sockets.pathOf(this.owner.name)).catch(() => undefined);
    this.sockets.close();
  }
}

/** Session files: `<session id>.json`. */
const ENTRY_FILE = /^[0-9a-f-]{36}\.json$/;
/** In a broker's directory: it stopped, leaving entries for the next broker (see close). */
const STOPPED_FILE = 'stopped';
/** A session file's next version, written beside it (see `add`). */
const NEXT_FILE = /^([0-9a-f-]{36}\.json)\.next$/;
