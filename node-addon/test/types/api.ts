// Type tests of the published declarations (dist/*.d.ts), in the style of tsd: each
// `@ts-expect-error` line must be a type error, or tsc fails with "Unused
// '@ts-expect-error' directive". Compiled by test/types.test.js (and `npm run typecheck`).
import {
  createSniffer,
  SnifferConfigError,
  SnifferError,
  type HttpMessage,
  type SnifferErrorCode,
  type SnifferStats,
} from '../../dist/index';

const s = createSniffer({ ports: [8080] });

// Stats are typed per counter, not Record<string, number>.
const st: SnifferStats = s.stats();
const requests: number = st.http.requests;
const kernelDrops: number = st.capture.kernel_drops;
// @ts-expect-error a misspelt counter does not exist
void s.stats().http.requsts;
// @ts-expect-error counters are numbers
const notString: string = st.output.delivered;
// @ts-expect-error there is no such stage
void st.tls;

// Event names and listener arguments are typed.
s.on('message', (m: HttpMessage) => {
  if (m.type === 'request') void m.url;
  else void m.statusCode;
});
s.once('stats', (x) => void x.flow.connections_opened);
s.on('end', () => undefined);
s.on('error', (e) => {
  const code: SnifferErrorCode = e.code;
  void code;
});
// @ts-expect-error a misspelt event name does not compile
s.on('mesage', () => undefined);
// @ts-expect-error the 'end' event has no argument
s.on('end', (x: number) => void x);
// @ts-expect-error 'message' listeners get a message, not a string
s.off('message', (m: string) => void m);
// @ts-expect-error emitting an event that does not exist
s.emit('stat', st);

// Errors carry a code from the closed set.
try {
  createSniffer({ ports: [0] });
} catch (e) {
  if (e instanceof SnifferConfigError) {
    const c: 'ERR_TCP_SNIFFER_CONFIG' = e.code;
    void c;
  }
  if (e instanceof SnifferError) {
    // @ts-expect-error not one of the codes
    const c: 'ERR_SOMETHING_ELSE' = e.code;
    void c;
  }
}

// Configuration keys are checked too.
// @ts-expect-error a misspelt setting
createSniffer({ ports: [80], maxBodySise: 10 });

void requests;
void kernelDrops;
void notString;
