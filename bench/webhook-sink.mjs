// A webhook receiver for bench/webhooks.mjs, in its own process so receiving does not take the
// load generator's CPU: answers 200 to every POST, counts them and how late each arrived after its
// event (the payload's timestamp); GET /stats answers the counts, GET /reset starts over.
import http from 'node:http';

let count = 0;
let lags = [];
const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    if (req.url === '/reset') {
      count = 0;
      lags = [];
    }
    const sorted = [...lags].sort((a, b) => a - b);
    const at = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] : null);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count, lagP50: at(0.5), lagP99: at(0.99) }));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    count++;
    try {
      lags.push(Date.now() - Date.parse(JSON.parse(Buffer.concat(chunks).toString()).timestamp));
    } catch {
      // a body that is not an event: counted, no lag
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`webhook sink running at http://127.0.0.1:${server.address().port}\n`));
