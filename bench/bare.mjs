// The Node ceiling: a bare Fastify route answering a constant JSON, for verify to be compared with.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
const answer = { valid: true, code: 'VALID', keyId: 'key_3kTn8Vw2Xq7Lp0RzB4sM' };
app.post('/v1/keys/verify', async () => answer);
const address = await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
process.stdout.write(`Keyward is running at ${address}\n`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
