import { createHash } from 'node:crypto';

/**
 * What a credential (a ticket, a verified token) is kept under: its SHA-256, so whoever reads
 * the store or the broker's memory holds nothing usable, and finding one compares digests, not
 * secrets.
 */
export function credentialKey(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}
