import { describe, expect, it } from 'vitest';
import { kernelAddress, parseTable } from '../../broker/transport/tcp-view.js';

describe('the kernel TCP table', () => {
  it('writes addresses as /proc/net/tcp{,6} prints them', () => {
    expect(kernelAddress('127.0.0.1')).toEqual({ file: 'tcp', hex: '0100007F' });
    expect(kernelAddress('10.213.0.2')).toEqual({ file: 'tcp', hex: '0200D50A' });
    expect(kernelAddress('::ffff:127.0.0.1')).toEqual({ file: 'tcp6', hex: '0000000000000000FFFF00000100007F' });
    expect(kernelAddress('::1')).toEqual({ file: 'tcp6', hex: '00000000000000000000000001000000' });
    expect(kernelAddress('fe80::1%eth0')).toEqual({ file: 'tcp6', hex: '000080FE000000000000000001000000' });
    expect(kernelAddress('not an address')).toBeUndefined();
    expect(kernelAddress(undefined)).toBeUndefined();
  });

  it('reads the send queue and the unanswered retransmissions and probes', () => {
    const table = parseTable(
      [
        '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
        '   0: 0100007F:1F96 0100007F:D2F4 01 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 20 4 30 10 -1',
        '   1: 0100007F:1F96 0100007F:D2F6 01 0004A000:00000000 04:00000BB8 00000000     0        0 112 1 0000000000000000 20 4 30 10 -1',
        '   2: 0100007F:1F96 0100007F:D2F8 01 00001000:00000000 01:000001F4 00000003     0        2 113 1 0000000000000000 20 4 30 10 -1',
      ].join('\n'),
    );
    expect(table.get('0100007F:1F96 0100007F:D2F4')).toEqual({ txQueue: 0, unanswered: 0 });
    expect(table.get('0100007F:1F96 0100007F:D2F6')).toEqual({ txQueue: 0x4a000, unanswered: 0 });
    expect(table.get('0100007F:1F96 0100007F:D2F8')).toEqual({ txQueue: 0x1000, unanswered: 5 });
  });
});
