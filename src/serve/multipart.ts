// multipart/form-data bodies (RFC 7578) for POST /api/jobs: text fields become strings (the JSON schema
// coerces numbers and booleans), file fields (init_image, mask) stay bytes. The body arrives whole and
// size-limited by the server's body limit.

import { HttpError } from './limits.js';

export function parseMultipart(body: Buffer, contentType: string): Record<string, string | Buffer> {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) throw new HttpError(400, 'bad_request', 'multipart/form-data without a boundary');
  const delim = Buffer.from(`--${m[1] ?? m[2]}`);
  const out: Record<string, string | Buffer> = {};
  let p = body.indexOf(delim);
  if (p < 0) throw new HttpError(400, 'bad_request', 'multipart body without its boundary');
  for (;;) {
    p += delim.length;
    if (body.subarray(p, p + 2).toString('latin1') === '--') break; // closing delimiter
    if (body.subarray(p, p + 2).toString('latin1') !== '\r\n') throw new HttpError(400, 'bad_request', 'malformed multipart body (delimiter not followed by CRLF)');
    p += 2;
    const headEnd = body.indexOf('\r\n\r\n', p);
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), p);
    if (headEnd < 0 || next < 0 || headEnd > next) throw new HttpError(400, 'bad_request', 'malformed multipart body (part without headers or end)');
    const headers = body.subarray(p, headEnd).toString('utf8');
    const disp = /content-disposition:\s*form-data;([^\r\n]*)/i.exec(headers);
    const name = disp && /\bname="([^"]*)"/i.exec(disp[1]);
    if (!name) throw new HttpError(400, 'bad_request', 'multipart part without a form-data name');
    const content = body.subarray(headEnd + 4, next);
    if (Object.prototype.hasOwnProperty.call(out, name[1])) throw new HttpError(400, 'bad_request', `multipart field ${name[1]} given twice`);
    out[name[1]] = /\bfilename="/i.test(disp![1]) ? Buffer.from(content) : content.toString('utf8');
    p = next + 2;
  }
  return out;
}
