// The floor: Node's own HTTP server answering a constant JSON, no framework at all.
import http from 'node:http';

const body = JSON.stringify({ valid: true, code: 'VALID', keyId: 'key_3kTn8Vw2Xq7Lp0RzB4sM' });
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`Keyward is running at http://127.0.0.1:${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
