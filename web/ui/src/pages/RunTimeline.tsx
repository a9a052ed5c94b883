import { enc, type Run, type RunEvent } from '../api'
import { Link } from '../router'
import { JSONView, Pill, duration } from '../ui'

/** One iteration of a block with each, from the events that carry its data.index. */
export interface IterationView {
  index: number
  status: string
  input?: unknown
  output?: unknown
  error?: unknown
  started?: string
  ended?: string
  events: RunEvent[]
}

export interface BlockView {
  id: string
  type?: string
  status: string
  input?: unknown
  output?: unknown
  error?: unknown
  started?: string
  ended?: string
  /** the block's own events (an iteration's are under it) */
  events: RunEvent[]
  /** a block with each: its iterations, by index */
  iterations: IterationView[]
  items?: number
  concurrency?: number
  /** a flow block: the run it started (flow_started) */
  child?: { run_id: string; flow?: string }
}

const iterationStatus: Record<string, string> = {
  iteration_started: 'running',
  iteration_retry: 'retrying',
  iteration_interrupted: 'interrupted',
  iteration_finished: 'succeeded',
  iteration_failed: 'failed',
  iteration_skipped: 'skipped',
}

/** iterationOf is the index of the iteration an event belongs to: an
 * iteration_* event, or another event (log, http) of an iteration, which
 * carries data.index. A block_* event with an index (block_failed names
 * the failed item) is the block's. */
function iterationOf(e: RunEvent): number | undefined {
  if (typeof e.data?.index !== 'number') return undefined
  if (e.type.startsWith('iteration_') || !e.type.startsWith('block_')) return e.data.index
  return undefined
}

// types maps block ids to their types in the flow version the run used: a
// skipped block has no block_started event, the one that carries its type.
export function groupByBlock(events: RunEvent[], types: Record<string, string>): BlockView[] {
  const out: BlockView[] = []
  const by = new Map<string, BlockView>()
  const its = new Map<string, Map<number, IterationView>>() // by block, by index: a loop of 1,000 items stays linear
  for (const e of events) {
    if (!e.block) continue
    let b = by.get(e.block)
    if (!b) {
      b = { id: e.block, status: 'pending', events: [], iterations: [] }
      by.set(e.block, b)
      out.push(b)
    }
    const idx = iterationOf(e)
    if (idx !== undefined) {
      let m = its.get(b.id)
      if (!m) its.set(b.id, (m = new Map()))
      let it = m.get(idx)
      if (!it) {
        it = { index: idx, status: 'pending', events: [] }
        m.set(idx, it)
        b.iterations.push(it)
      }
      it.events.push(e)
      const s = iterationStatus[e.type]
      if (s) it.status = s
      if (e.type === 'iteration_started') {
        it.started ??= e.at
        it.input = e.data?.config
      } else if (e.type === 'iteration_finished') {
        it.output = e.data?.output
        it.ended = e.at
      } else if (e.type === 'iteration_failed') {
        it.error = e.data?.error ?? e.data
        it.ended = e.at
      } else if (e.type === 'iteration_skipped') {
        it.ended = e.at
      }
      continue
    }
    b.events.push(e)
    switch (e.type) {
      case 'block_started':
        b.status = 'running'
        b.type = e.data?.type
        b.input = e.data?.config
        b.started ??= e.at
        if (typeof e.data?.items === 'number') b.items = e.data.items
        if (typeof e.data?.concurrency === 'number') b.concurrency = e.data.concurrency
        break
      case 'block_finished':
        b.status = 'succeeded'
        b.output = e.data?.output
        b.ended = e.at
        break
      case 'block_failed':
        b.status = 'failed'
        b.error = e.data?.error ?? e.data
        b.ended = e.at
        break
      case 'block_skipped':
        b.status = 'skipped'
        b.type ??= e.data?.type
        b.ended = e.at
        break
      case 'block_retry':
        b.status = 'retrying'
        break
      case 'block_waiting':
        b.status = 'waiting'
        break
      case 'block_interrupted':
        b.status = 'interrupted'
        break
      case 'flow_started':
        if (e.data?.run_id) b.child = { run_id: e.data.run_id, flow: e.data.flow }
        break
    }
  }
  for (const b of out) {
    b.type ??= types[b.id]
    b.iterations.sort((x, y) => x.index - y.index)
  }
  return out
}

export function EventLine({ e }: { e: RunEvent }) {
  const time = new Date(e.at).toLocaleTimeString(undefined, { hour12: false }) + '.' + String(new Date(e.at).getMilliseconds()).padStart(3, '0')
  if (e.type === 'log') {
    return (
      <div class={'ev ev-log lvl-' + (e.data?.level ?? 'info')}>
        <span class="ev-time">{time}</span>
        <span class="ev-type">{e.data?.level ?? 'log'}</span>
        <span class="ev-msg">{typeof e.data?.message === 'string' ? e.data.message : JSON.stringify(e.data?.message ?? e.data)}</span>
      </div>
    )
  }
  if (e.type === 'http_request' || e.type === 'http_response') {
    const d = e.data ?? {}
    const summary =
      e.type === 'http_request' ? `${d.method ?? ''} ${d.url ?? ''}` : `${d.status ?? d.status_code ?? ''} ${d.url ?? ''}${d.duration_ms !== undefined ? ` · ${d.duration_ms} ms` : ''}`
    return (
      <details class={'ev ev-http ' + e.type}>
        <summary>
          <span class="ev-time">{time}</span>
          <span class="ev-type">{e.type === 'http_request' ? 'HTTP →' : 'HTTP ←'}</span>
          <span class="ev-msg mono">{summary}</span>
        </summary>
        <JSONView value={d} />
      </details>
    )
  }
  if (e.type === 'block_started' || e.type === 'block_finished' || e.type === 'block_skipped' || e.type === 'iteration_started' || e.type === 'iteration_finished' || e.type === 'iteration_skipped') {
    return (
      <div class="ev">
        <span class="ev-time">{time}</span>
        <span class="ev-type">{e.type.replace(/^(block|iteration)_/, '')}</span>
        {e.type.endsWith('_skipped') && <span class="ev-msg mono">if {String(e.data?.if ?? '')} was false</span>}
      </div>
    )
  }
  return (
    <details class={'ev ' + (e.type.endsWith('failed') ? 'ev-error' : '')}>
      <summary>
        <span class="ev-time">{time}</span>
        <span class="ev-type">{e.type}</span>
        {e.type.endsWith('_failed') && <span class="ev-msg">{String(e.data?.error ?? '')}</span>}
      </summary>
      <JSONView value={e.data} />
    </details>
  )
}

const ms = (t?: string) => (t ? new Date(t).getTime() : NaN)

/** Span is a bar on a time scale from t0 to t1: where something started and how long it took. */
function Span({ from, to, t0, t1, label }: { from?: string; to?: string; t0: number; t1: number; label: string }) {
  const a = ms(from)
  const b = Number.isNaN(ms(to)) ? t1 : ms(to)
  const total = Math.max(t1 - t0, 1)
  const start = Number.isNaN(a) ? b : a
  const left = Math.min(Math.max(((start - t0) / total) * 100, 0), 100)
  const width = Math.min(Math.max(((b - start) / total) * 100, 0), 100 - left)
  return (
    <span class="tl-bar" title={label} aria-label={label}>
      <span class="tl-span" data-start={start} data-end={b} style={{ left: left + '%', width: width + '%' }} />
    </span>
  )
}

function counts(its: IterationView[]) {
  const c = new Map<string, number>()
  for (const it of its) c.set(it.status, (c.get(it.status) ?? 0) + 1)
  return [...c].map(([s, n]) => `${n} ${s}`).join(', ')
}

/**
 * Timeline lists the run's blocks in the order they started: each with a
 * bar on one time scale for the whole run (blocks that ran at the same
 * time, parallel branches, overlap, and say with which blocks), its
 * iterations grouped under it (a block with each), and for a flow block
 * the child run it started.
 */
export function Timeline({ blocks, run, project, live }: { blocks: BlockView[]; run: Run; project: string; live: boolean }) {
  const times = blocks.flatMap((b) => [ms(b.started), ms(b.ended), ...b.events.map((e) => ms(e.at))]).filter((t) => !Number.isNaN(t))
  const t0 = Math.min(ms(run.started_at) || Infinity, ...times)
  const end = live ? Date.now() : Math.max(ms(run.finished_at) || 0, ...times)
  const t1 = Math.max(end, t0 + 1)
  const span = (b: { started?: string; ended?: string }) => {
    const a = ms(b.started)
    const z = Number.isNaN(ms(b.ended)) ? t1 : ms(b.ended)
    return [Number.isNaN(a) ? z : a, z]
  }
  const alongside = (b: BlockView) =>
    blocks.filter((o) => {
      if (o === b || o.started === undefined || b.started === undefined) return false
      const [a1, a2] = span(b)
      const [b1, b2] = span(o)
      return a1 < b2 && b1 < a2
    })
  const childStatus = (id: string) => run.children?.find((c) => c.id === id)?.status
  return (
    <ol class="timeline">
      {blocks.map((b) => {
        const par = alongside(b)
        const [bs, be] = span(b)
        return (
          <li class={'tl-block status-' + b.status} key={b.id} data-block={b.id}>
            <div class="tl-dot" aria-hidden="true" />
            <div class="card tl-card">
              <header class="tl-head">
                <h3>
                  <span class="mono">{b.id}</span> {b.type && <span class="tag">{b.type}</span>}
                  {par.length > 0 && (
                    <span class="tag parallel" data-testid="parallel" title="These blocks ran at the same time (parallel branches)">
                      ∥ alongside {par.map((o) => o.id).join(', ')}
                    </span>
                  )}
                </h3>
                <span class="tl-meta">
                  <Span from={b.started} to={b.ended} t0={t0} t1={t1} label={`${b.id}: ${duration(b.started, b.ended) || 'not started'} from ${duration(new Date(t0).toISOString(), b.started) || '0 ms'} into the run`} />
                  <Pill status={b.status} /> <span class="mono muted">{duration(b.started, b.ended)}</span>
                </span>
              </header>
              {b.error !== undefined && (
                <div class="alert error">
                  <span class="mono pre">{typeof b.error === 'string' ? b.error : JSON.stringify(b.error, null, 2)}</span>
                </div>
              )}
              {b.child && (
                <p class="child-run" data-testid="child-run-link">
                  Runs flow <span class="mono">{b.child.flow ?? '?'}</span> as run{' '}
                  <Link href={`/p/${enc(project)}/runs/${enc(b.child.run_id)}`} class="mono" title={b.child.run_id}>
                    …{b.child.run_id.slice(-8)}
                  </Link>{' '}
                  {childStatus(b.child.run_id) && <Pill status={childStatus(b.child.run_id)!} />}
                </p>
              )}
              <div class="grid-2">
                {b.input !== undefined && <JSONView label="Input (evaluated config)" value={b.input} />}
                {b.output !== undefined && <JSONView label="Output" value={b.output} />}
              </div>
              {b.iterations.length > 0 && (
                <div class="iterations" data-testid="iterations">
                  <div class="iterations-head">
                    <strong>
                      {b.items ?? b.iterations.length} iteration{(b.items ?? b.iterations.length) === 1 ? '' : 's'}
                    </strong>
                    {b.concurrency !== undefined && <span class="muted"> · {b.concurrency} at once</span>}
                    <span class="muted"> · {counts(b.iterations)}</span>
                  </div>
                  <ol class="iteration-list">
                    {b.iterations.map((it) => (
                      <li class={'iteration status-' + it.status} data-index={it.index} key={it.index}>
                        <details>
                          <summary>
                            <span class="mono it-index">#{it.index}</span>
                            <Pill status={it.status} />
                            <Span from={it.started} to={it.ended} t0={bs} t1={Math.max(be, bs + 1)} label={`item ${it.index}: ${duration(it.started, it.ended) || it.status}`} />
                            <span class="mono muted it-time">{duration(it.started, it.ended)}</span>
                          </summary>
                          {it.error !== undefined && (
                            <div class="alert error">
                              <span class="mono pre">{typeof it.error === 'string' ? it.error : JSON.stringify(it.error, null, 2)}</span>
                            </div>
                          )}
                          <div class="grid-2">
                            {it.input !== undefined && <JSONView label="Input (evaluated config)" value={it.input} />}
                            {it.output !== undefined && <JSONView label="Output" value={it.output} />}
                          </div>
                          <div class="events">
                            {it.events.map((e) => (
                              <EventLine e={e} key={e.seq} />
                            ))}
                          </div>
                        </details>
                      </li>
                    ))}
                  </ol>
                </div>
              )}
              <div class="events">
                {b.events.map((e) => (
                  <EventLine e={e} key={e.seq} />
                ))}
              </div>
            </div>
          </li>
        )
      })}
    </ol>
  )
}
