// Where the server's main thread spends its time per request, from a V8 CPU profile (`node --cpu-prof`): self
// time of every sample from the first one inside a given source file (the route under test, so start-up is left
// out) to the end, grouped by what the code is. Used by `npm run bench:embed-http -- --cpu-prof`.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  parent?: number;
  children?: number[];
  callFrame: { functionName: string; url: string };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Groups, first match wins: [label, test on the frame's URL or name]. */
const GROUPS: Array<[string, RegExp]> = [
  ['garbage collection', /^\(garbage collector\)$/],
  ['pixels to model input floats (toTensor)', /images\/tensor|^toTensor$/],
  ['decoding: sharp calls (the work itself runs on libuv threads)', /node_modules\/sharp\/|images\/preprocess/],
  ['hand-off to the inference worker (messages, queue)', /^postMessage$|node:internal\/worker|embedding\/|images\//],
  ['answer: the vector as JSON', /http\/vector-json|routes\/embed|fast-json-stringify/],
  ['V8 and native code without a JavaScript frame', /^\(program\)$/],
  ['form: multipart parsing and field checks', /busboy|@fastify\/multipart|http\/intake|@sinclair\/typebox/],
  ['metrics', /prom-client|http\/metrics/],
  [
    'HTTP: parsing, routing, hooks, headers, socket writes',
    /fastify|find-my-way|helmet|http\/access|node:_http|node:net|node:stream|internal\/streams|^writev$|node:events|node:buffer|indexOfBuffer|node:internal\/(process|timers)|^(nextTick|processTicksAndRejections)$/,
  ],
];

export interface ProfileSummary {
  /** Microseconds of main-thread CPU per request, by group (idle left out), largest first. */
  groups: Array<{ group: string; microseconds: number }>;
  total: number;
}

export function summariseProfile(file: string, requests: number, startAt: RegExp): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  for (const node of profile.nodes) for (const child of node.children ?? []) byId.get(child)!.parent = node.id;
  const inside = (id: number): boolean => {
    for (let node = byId.get(id); node; node = node.parent === undefined ? undefined : byId.get(node.parent)) {
      if (startAt.test(node.callFrame.url)) return true;
    }
    return false;
  };
  const totals = new Map<string, number>();
  let started = false;
  profile.samples.forEach((id, i) => {
    started ||= inside(id);
    if (!started) return;
    const { functionName, url } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') return;
    const group = GROUPS.find(([, test]) => test.test(url) || test.test(functionName))?.[0] ?? 'other';
    totals.set(group, (totals.get(group) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const groups = [...totals]
    .map(([group, micros]) => ({ group, microseconds: micros / requests }))
    .sort((a, b) => b.microseconds - a.microseconds);
  return { groups, total: groups.reduce((sum, g) => sum + g.microseconds, 0) };
}
