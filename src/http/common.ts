// Helpers shared by the route plugins: the schema helpers, and pagination links.
import type { FastifyReply, FastifyRequest } from 'fastify';

export * from './schema.js';

/** RFC 8288 Link header with first/prev/next/last, keeping the request's other query parameters. */
export function setPageLinks(req: FastifyRequest, reply: FastifyReply, page: number, limit: number, total: number): void {
  const url = new URL(req.url, 'http://local');
  const last = Math.max(1, Math.ceil(total / limit));
  const link = (p: number, rel: string) => {
    url.searchParams.set('page', String(p));
    url.searchParams.set('limit', String(limit));
    return `<${url.pathname}?${url.searchParams.toString()}>; rel="${rel}"`;
  };
  const links = [link(1, 'first')];
  if (page > 1) links.push(link(Math.min(page - 1, last), 'prev'));
  if (page < last) links.push(link(page + 1, 'next'));
  links.push(link(last, 'last'));
  reply.header('link', links.join(', '));
}

