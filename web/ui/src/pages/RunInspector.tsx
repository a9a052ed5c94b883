import { useEffect, useRef, useState } from 'preact/hooks'
import { get, post, enc, type Definition, type Flow, type Run, type RunEvent } from '../api'
import { useApp } from '../app'
import { Link, navigate } from '../router'
import { ErrorBox, JSONView, PageHeader, Pill, Spinner, duration, fullTime } from '../ui'

// Event types the executor and blocks emit; EventSource delivers named
// events only to listeners of that name.
const eventTypes = [
  'run_queued', 'run_started', 'run_finished', 'run_canceled', 'run_failed', 'run_resumed', 'run_released',
  'block_started', 'block_finished', 'block_failed', 'block_skipped', 'block_retry', 'block_waiting', 'block_interrupted',
  'log', 'http_request', 'http_response', 'debug', 'events_truncated', 'message',
]

const finished = (s?: string) => s === 'succeeded' || s === 'failed' || s === 'canceled'

interface BlockView {
  id: string
  type?: string
  status: string
  input?: unknown
  output?: unknown
  error?: unknown
  started?: string
  ended?: string
  events: RunEvent[]
}

// types maps block ids to their types in the flow version the run used: a
// skipped block has no block_started event, the one that carries its type.
function groupByBlock(events: RunEvent[], types: Record<string, string>): BlockView[] {
  const out: BlockView[] = []
  const by = new Map<string, BlockView>()
  for (const e of events) {
    if (!e.block) continue
    let b = by.get(e.block)
    if (!b) {
      b = { id: e.block, status: 'pending', events: [] }
      by.set(e.block, b)
      out.push(b)
    }
    b.events.push(e)
    switch (e.type) {
      case 'block_started':
        b.status = 'running'
        b.type = e.data?.type
        b.input = e.data?.config
        b.started ??= e.at
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
    }
  }
  for (const b of out) b.type ??= types[b.id]
  return out
}

function EventLine({ e }: { e: RunEvent }) {
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
  if (e.type === 'block_started' || e.type === 'block_finished' || e.type === 'block_skipped') {
    return (
      <div class="ev">
        <span class="ev-time">{time}</span>
        <span class="ev-type">{e.type.replace('block_', '')}</span>
        {e.type === 'block_skipped' && <span class="ev-msg mono">if {String(e.data?.if ?? '')} was false</span>}
      </div>
    )
  }
  return (
    <details class={'ev ' + (e.type.endsWith('failed') ? 'ev-error' : '')}>
      <summary>
        <span class="ev-time">{time}</span>
        <span class="ev-type">{e.type}</span>
        {e.type === 'block_failed' && <span class="ev-msg">{String(e.data?.error ?? '')}</span>}
      </summary>
      <JSONView value={e.data} />
    </details>
  )
}

export function RunInspector({ project, id }: { project: string; id: string }) {
  const app = useApp()
  const [run, setRun] = useState<Run | null>(null)
  const [events, setEvents] = useState<RunEvent[]>([])
  const [err, setErr] = useState<unknown>(null)
  const [live, setLive] = useState(false)
  const [showRaw, setShowRaw] = useState(false)
  const [types, setTypes] = useState<Record<string, string>>({})
  const seqs = useRef(new Set<number>())
  const lastSeq = useRef(0)

  const add = (list: RunEvent[]) => {
    const fresh = list.filter((e) => !seqs.current.has(e.seq))
    if (!fresh.length) return
    fresh.forEach((e) => {
      seqs.current.add(e.seq)
      lastSeq.current = Math.max(lastSeq.current, e.seq)
    })
    setEvents((old) => [...old, ...fresh].sort((a, b) => a.seq - b.seq))
  }
  const loadRun = () =>
    get<Run>(`/api/v1/runs/${enc(id)}`)
      .then((r) => {
        setRun(r)
        return r
      })
      .catch((e) => {
        setErr(e)
        return null
      })

  useEffect(() => {
    let es: EventSource | null = null
    let closed = false
    let retry: ReturnType<typeof setTimeout> | undefined
    const follow = () => {
      if (closed) return
      es = new EventSource(`/api/v1/runs/${enc(id)}/events?follow=1&after=${lastSeq.current}`)
      setLive(true)
      const onEvent = (m: MessageEvent) => {
        try {
          add([JSON.parse(m.data)])
        } catch {
          /* ignore a malformed line */
        }
      }
      eventTypes.forEach((t) => es!.addEventListener(t, onEvent as EventListener))
      es.addEventListener('run_finished', () => loadRun())
      es.addEventListener('end', () => {
        es?.close()
        setLive(false)
        // Pick up anything of an unknown type, and the final state.
        get<{ events: RunEvent[] }>(`/api/v1/runs/${enc(id)}/events`).then((r) => add(r.events ?? []))
        loadRun()
      })
      es.onerror = () => {
        es?.close()
        setLive(false)
        loadRun().then((r) => {
          if (r && !finished(r.status)) retry = setTimeout(follow, 1500)
          else get<{ events: RunEvent[] }>(`/api/v1/runs/${enc(id)}/events`).then((x) => add(x.events ?? []))
        })
      }
    }
    loadRun().then((r) => {
      if (!r) return
      if (finished(r.status)) get<{ events: RunEvent[] }>(`/api/v1/runs/${enc(id)}/events`).then((x) => add(x.events ?? [])).catch(setErr)
      else follow()
    })
    return () => {
      closed = true
      clearTimeout(retry)
      es?.close()
    }
  }, [id])

  // Block types from the flow's definition, when its current version is the
  // one this run used (an older version may have given an id another type).
  useEffect(() => {
    if (!run) return
    let stale = false
    get<Flow & { definition: Definition }>(`/api/v1/projects/${enc(project)}/flows/${enc(run.flow)}`)
      .then((f) => {
        if (stale || f.version !== run.flow_version) return
        setTypes(Object.fromEntries((f.definition?.blocks ?? []).map((b) => [b.id, b.type])))
      })
      .catch(() => {
        /* the flow may have been deleted since: the events' types remain */
      })
    return () => {
      stale = true
    }
  }, [project, run?.flow, run?.flow_version])

  if (err) return <ErrorBox error={err} retry={() => location.reload()} />
  if (!run) return <Spinner label="Loading run…" />
  const blocks = groupByBlock(events, types)
  const started = events.find((e) => e.type === 'run_started')
  const runEvents = events.filter((e) => !e.block)
  return (
    <section class="inspector">
      <PageHeader
        title={
          <>
            <Link href={`/p/${enc(project)}/flows/${enc(run.flow)}`}>{run.flow}</Link> <span class="muted mono">v{run.flow_version}</span> <Pill status={run.status} />
          </>
        }
        sub={
          <>
            Run <span class="mono">{run.id}</span> · {run.environment} · {run.trigger} by {run.created_by}
            {run.rerun_of && (
              <>
                {' '}
                · rerun of{' '}
                <Link class="mono" href={`/p/${enc(project)}/runs/${enc(run.rerun_of)}`} title={run.rerun_of}>
                  …{run.rerun_of.slice(-8)}
                </Link>
              </>
            )}
          </>
        }
      >
        {live && (
          <span class="live" title="Updating live">
            <span class="dot" /> live
          </span>
        )}
        {!finished(run.status) && (
          <button
            class="btn danger"
            onClick={async () => {
              try {
                setRun(await post<Run>(`/api/v1/runs/${enc(id)}/cancel`))
                app.toast('Cancel requested')
              } catch (e) {
                app.toast((e as Error).message, 'error')
              }
            }}
          >
            Cancel run
          </button>
        )}
        <button
          class="btn"
          title="A new run of this flow (its current version) in the same environment with the same input"
          onClick={async () => {
            try {
              const r = await post<Run>(`/api/v1/runs/${enc(id)}/rerun`)
              app.toast('Run again: started')
              navigate(`/p/${enc(project)}/runs/${enc(r.id)}`)
            } catch (e) {
              app.toast((e as Error).message, 'error')
            }
          }}
        >
          ↻ Run again
        </button>
        <Link class="btn" href={`/p/${enc(project)}/runs?flow=${enc(run.flow)}`}>
          All runs of {run.flow}
        </Link>
      </PageHeader>

      <dl class="facts">
        <div>
          <dt>Queued</dt>
          <dd>{fullTime(run.queued_at)}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{fullTime(run.started_at) || '—'}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd class="mono">{duration(run.started_at, run.finished_at) || '—'}</dd>
        </div>
        <div>
          <dt>Blocks</dt>
          <dd>{blocks.length}</dd>
        </div>
        {(run.resumes ?? 0) > 0 && (
          <div>
            <dt>Resumed</dt>
            <dd title={run.resume_reason}>{run.resumes === 1 ? 'once' : `${run.resumes} times`}</dd>
          </div>
        )}
      </dl>

      {run.parent_run_id && (
        <p class="muted" data-testid="parent-run">
          Started by block <span class="mono">{run.parent_block}</span> of run{' '}
          <Link href={`/p/${enc(project)}/runs/${enc(run.parent_run_id)}`} class="mono">
            {run.parent_run_id}
          </Link>
        </p>
      )}
      {(run.children?.length ?? 0) > 0 && (
        <div class="children" data-testid="child-runs">
          <h2>Sub-flow runs</h2>
          <ul>
            {run.children!.map((c) => (
              <li key={c.id}>
                <span class="mono">{c.parent_block}</span> →{' '}
                <Link href={`/p/${enc(project)}/runs/${enc(c.id)}`}>{c.flow}</Link> <Pill status={c.status} />
              </li>
            ))}
          </ul>
        </div>
      )}
      {run.status === 'waiting' && run.available_at && (
        <div class="alert info" role="status">
          <strong>Waiting</strong> until {fullTime(run.available_at)}: the run holds no worker meanwhile and resumes on any replica.
        </div>
      )}
      {!finished(run.status) && (run.resumes ?? 0) > 0 && run.resume_reason && (
        <div class="alert info" role="status">
          <strong>Resumed</strong> after an interruption: {run.resume_reason}.
        </div>
      )}

      {run.error && (
        <div class="alert error" role="alert">
          <strong>Run failed</strong>
          <span class="mono pre">{run.error}</span>
        </div>
      )}

      <div class="grid-2">
        <div class="card">
          <h2>Input</h2>
          {started?.data?.input !== undefined ? <JSONView value={started.data.input} /> : <p class="muted">No input.</p>}
        </div>
        <div class="card">
          <h2>Output</h2>
          {run.output !== undefined ? <JSONView value={run.output} /> : <p class="muted">{finished(run.status) ? 'No output.' : 'Not finished yet.'}</p>}
        </div>
      </div>

      <h2 class="section-title">Timeline</h2>
      {blocks.length === 0 && (finished(run.status) ? <p class="muted">No block ran.</p> : <Spinner label="Waiting for the first block…" />)}
      <ol class="timeline">
        {blocks.map((b) => (
          <li class={'tl-block status-' + b.status} key={b.id}>
            <div class="tl-dot" aria-hidden="true" />
            <div class="card tl-card">
              <header class="tl-head">
                <h3>
                  <span class="mono">{b.id}</span> {b.type && <span class="tag">{b.type}</span>}
                </h3>
                <span class="tl-meta">
                  <Pill status={b.status} /> <span class="mono muted">{duration(b.started, b.ended)}</span>
                </span>
              </header>
              {b.error !== undefined && (
                <div class="alert error">
                  <span class="mono pre">{typeof b.error === 'string' ? b.error : JSON.stringify(b.error, null, 2)}</span>
                </div>
              )}
              <div class="grid-2">
                {b.input !== undefined && <JSONView label="Input (evaluated config)" value={b.input} />}
                {b.output !== undefined && <JSONView label="Output" value={b.output} />}
              </div>
              <div class="events">
                {b.events.map((e) => (
                  <EventLine e={e} key={e.seq} />
                ))}
              </div>
            </div>
          </li>
        ))}
      </ol>

      <div class="raw-toggle">
        <button class="btn small ghost" aria-expanded={showRaw} onClick={() => setShowRaw(!showRaw)}>
          {showRaw ? 'Hide' : 'Show'} all {events.length} events
        </button>
      </div>
      {showRaw && (
        <div class="card events raw">
          {events.map((e) => (
            <EventLine e={e} key={e.seq} />
          ))}
        </div>
      )}
      {runEvents.some((e) => e.type === 'events_truncated') && <p class="muted">Some events were dropped: the run reached its event limit.</p>}
    </section>
  )
}
