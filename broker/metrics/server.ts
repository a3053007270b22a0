import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FaultReporter } from '../fault.js';
import { httpBoundary, upgradeBoundary } from '../http/boundary.js';
import { answerClientErrors, refuseConnect, refuseHostless } from '../http/client-error.js';
import { logAccess } from '../http/access-log.js';
import { isWebSocketUpgrade } from '../http/foreign-upgrade.js';
import { EntryError } from '../errors.js';
import { handleHealth, type HealthDeps } from '../http/health-routes.js';
import { acceptFailures } from '../http/listener.js';
import { requestUrl } from '../http/request-url.js';
import { requestId } from '../http/request-id.js';
import { sendError, sendJson, sendMethodNotAllowed } from '../http/respond.js';
import type { Logger } from '../log.js';
import type { BrokerMetrics } from './metrics.js';

/**
 * The metrics listener (--metrics-listen): `GET /metrics` in the Prometheus text format, on
 * its own address so that it can stay inside the cluster while the broker faces users; and
 * `/healthz`, `/readyz` as the broker's listener answers them, for probes that cannot present
 * the client certificate that listener may want (--tls-client-ca).
 */
export class MetricsServer {
  private server: Server | undefined;

  constructor(
    private readonly metrics: BrokerMetrics,
    private readonly log: Logger,
    private readonly fault: FaultReporter,
    private readonly health: HealthDeps,
  ) {}

  async listen(host: string, port: number): Promise<string> {
    const server = createServer(
      // Refused by `refuseHostless`, with a code.
      { requireHostHeader: false },
      httpBoundary(
        'metrics',
        async (req, res) => {
          // The rules of the broker's own listener: a request id, one log line, HEAD as GET.
          res.setHeader('x-request-id', requestId(req));
          logAccess(req, res, this.log);
          if (refuseHostless(req, res)) return;
          // With no 'upgrade' listener Node hands an upgrade here as a plain request (as it should
          // another protocol's, h2c): a WebSocket one is refused, not answered as if it were a GET.
          if (isWebSocketUpgrade(req)) {
            sendError(res, new EntryError('ENTRY_BAD_REQUEST', "the metrics listener takes no WebSocket upgrade: the broker's own listener does, on /enter, /attach and /watch"), { connection: 'close' });
            return;
          }
          const url = requestUrl(req);
          if (url && (await handleHealth(req, res, url, this.health))) return;
          const path = url?.pathname;
          if (path !== '/metrics') {
            sendJson(res, 404, { error: 'ENTRY_NOT_FOUND', message: `not found: ${path ?? req.url ?? ''} (try /metrics, /healthz or /readyz)` });
            return;
          }
          if (req.method !== 'GET' && req.method !== 'HEAD') {
            sendMethodNotAllowed(res, req.method, path, 'GET, HEAD');
            return;
          }
          const text = await this.metrics.text();
          res.writeHead(200, { 'content-type': this.metrics.contentType }).end(text);
        },
        this.fault,
      ),
    );
    server.on('clientError', answerClientErrors(this.log));
    server.on('connect', upgradeBoundary(refuseConnect(this.log), this.fault));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        server.on('error', acceptFailures(this.log));
        resolve();
      });
    });
    const a = server.address() as AddressInfo;
    const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`;
    this.log.info('metrics listening', { url });
    return url;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
