import { useEffect, useState } from 'preact/hooks'
import { get, enc, type BlockDef, type Run, type RunEvent, type Trigger } from '../api'
import { layout, NODE_H, NODE_W, TRIGGER } from '../graph'
import { Link } from '../router'
import { Pill, ago } from '../ui'

/** LastRun is the flow's newest run and the status each block reached in it. */
export interface LastRun {
  run: Run
  blocks: Record<string, string>
}

const blockStatus: Record<string, string> = {
  block_started: 'running',
  block_retry: 'retrying',
  block_waiting: 'waiting',
  block_interrupted: 'interrupted',
  block_finished: 'succeeded',
  block_failed: 'failed',
  block_skipped: 'skipped',
}

/** useLastRun loads the newest run of the flow and its blocks' last status
 * (from its events; a page of events is 1,000). key reloads it. */
export function useLastRun(project: string, flow: string | undefined, key: unknown): LastRun | null {
  const [last, setLast] = useState<LastRun | null>(null)
  useEffect(() => {
    if (!flow) return
    let stale = false
    ;(async () => {
      const r = await get<{ runs: Run[] }>(`/api/v1/projects/${enc(project)}/runs?flow=${enc(flow)}&limit=1`)
      const run = r.runs?.[0]
      if (!run) return
      const blocks: Record<string, string> = {}
      let after = 0
      for (let page = 0; page < 20; page++) {
        const { events } = await get<{ events: RunEvent[] }>(`/api/v1/runs/${enc(run.id)}/events?after=${after}`)
        for (const e of events ?? []) {
          after = Math.max(after, e.seq)
          const s = e.block && blockStatus[e.type]
          if (s) blocks[e.block!] = s
        }
        if ((events?.length ?? 0) < 1000) break
      }
      if (!stale) setLast({ run, blocks })
    })().catch(() => {
      /* no status dots: the graph is drawn without them */
    })
    return () => {
      stale = true
    }
  }, [project, flow, key])
  return last
}

/** calledFlow is what a flow block's flow field names: the name when it is a plain string literal, else the expression. */
function calledFlow(b: BlockDef): string {
  const v = b.config?.flow
  if (typeof v !== 'string') return '?'
  const m = /^\s*(['"`])([^'"`$]*)\1\s*$/.exec(v)
  return m ? m[2] : v
}

const short = (s: string, n = 26) => (s.length > n ? s.slice(0, n - 1) + '…' : s)

function triggerDetail(t: Trigger) {
  if (t.type === 'schedule') return t.cron ?? ''
  if (t.type === 'event') return t.topic ?? ''
  return ''
}

export interface FlowGraphProps {
  trigger: Trigger
  blocks: BlockDef[]
  onError: BlockDef[]
  selected: string
  onSelect: (id: string) => void
  last: LastRun | null
  project: string
}

/**
 * FlowGraph draws the flow: the trigger, each block one level below the
 * blocks it runs after (solid edges), dashed edges for the steps.X a block
 * reads that are not its direct dependencies, a block's if on its incoming
 * edges, and the on_error blocks in a lane of their own. Each node shows
 * the status its block reached in the flow's last run.
 */
export function FlowGraph(props: FlowGraphProps) {
  const gb = props.blocks.map((b) => ({
    id: b.id,
    needs: b.needs,
    sources: [...Object.values(b.config ?? {}).filter((v): v is string => typeof v === 'string'), b.if ?? '', b.each ?? ''],
  }))
  const onErrorIDs = props.onError.map((b) => b.id)
  const g = layout(gb, onErrorIDs)
  const byID = new Map<string, BlockDef>([...props.blocks, ...props.onError].map((b) => [b.id, b]))
  const last = props.last
  // A block's if sits where its incoming edges meet, on all of them.
  const conds = g.edges.filter((e, i, all) => e.kind === 'dep' && byID.get(e.to)?.if && !onErrorIDs.includes(e.to) && all.findIndex((x) => x.kind === 'dep' && x.to === e.to) === i)
  return (
    <div class="graph-wrap">
      <div class="graph" style={{ width: g.width + 'px', height: g.height + 'px' }} role="group" aria-label="Flow graph">
        {g.laneY !== undefined && (
          <div class="glane" style={{ top: g.laneY + 'px', height: g.height - g.laneY + 'px' }}>
            <span class="glane-label">on_error: runs when a block fails the run</span>
          </div>
        )}
        <svg class="gedges" width={g.width} height={g.height} aria-hidden="true">
          <defs>
            <marker id="g-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" />
            </marker>
          </defs>
          {g.edges.map((e) => (
            <path class={'gedge ' + e.kind} d={e.path} data-from={e.from === TRIGGER ? 'trigger' : e.from} data-to={e.to} marker-end="url(#g-arrow)" />
          ))}
        </svg>
        {conds.map((e) => {
          const cond = byID.get(e.to)!.if!
          return (
            <span class="gcond" data-to={e.to} title={`if ${cond}`} style={{ left: e.mid.x + 'px', top: e.mid.y + 'px' }}>
              if {short(cond, 22)}
            </span>
          )
        })}
        {g.nodes.map((n) => {
          const pos = { left: n.x + 'px', top: n.y + 'px', width: NODE_W + 'px', height: NODE_H + 'px' }
          if (n.id === TRIGGER) {
            const s = last?.run.status
            return (
              <button type="button" class={'gnode trigger' + (props.selected === TRIGGER ? ' selected' : '')} style={pos} data-node="trigger" aria-pressed={props.selected === TRIGGER} onClick={() => props.onSelect(TRIGGER)}>
                <span class="gnode-top">
                  {s && <span class={'gstatus status-' + s} title={`last run: ${s}`} />}
                  <span class="gnode-id">⚑ trigger</span>
                </span>
                <span class="gnode-sub">
                  <span class="tag">{props.trigger.type}</span> <span class="mono muted">{short(triggerDetail(props.trigger), 16)}</span>
                </span>
              </button>
            )
          }
          const b = byID.get(n.id)!
          const s = last?.blocks[n.id]
          const handler = n.level < 0
          return (
            <button
              type="button"
              class={'gnode' + (handler ? ' handler' : '') + (props.selected === n.id ? ' selected' : '')}
              style={pos}
              data-node={n.id}
              aria-pressed={props.selected === n.id}
              title={b.if ? `if ${b.if}` : undefined}
              onClick={() => props.onSelect(n.id)}
            >
              <span class="gnode-top">
                <span class={'gstatus status-' + (s ?? 'none')} title={s ? `last run: ${s}` : 'not in the last run'} />
                <span class="gnode-id mono">{short(n.id, 18)}</span>
                <span class="tag">{b.type}</span>
              </span>
              <span class="gnode-sub">
                {b.each && (
                  <span class="gbadge each" title={`each ${b.each}`}>
                    each · {b.concurrency ?? 1} at once
                  </span>
                )}
                {b.type === 'flow' && (
                  <span class="gbadge flow" title={`runs flow ${calledFlow(b)}${b.config?.version ? ' version ' + b.config.version : ''}`}>
                    → {short(calledFlow(b), 16)}
                    {b.config?.version ? ` v${b.config.version}` : ''}
                  </span>
                )}
                {!b.each && b.type !== 'flow' && b.continue_on_error && <span class="gbadge">continues on error</span>}
              </span>
            </button>
          )
        })}
      </div>
      <div class="graph-foot">
        <span class="legend">
          <svg width="28" height="8" aria-hidden="true">
            <path class="gedge dep" d="M0,4 L28,4" />
          </svg>
          runs after
        </span>
        <span class="legend">
          <svg width="28" height="8" aria-hidden="true">
            <path class="gedge ref" d="M0,4 L28,4" />
          </svg>
          reads <span class="mono">steps.X</span>
        </span>
        {last ? (
          <span class="last-run" data-testid="last-run">
            Last run <Pill status={last.run.status} />{' '}
            <Link href={`/p/${enc(props.project)}/runs/${enc(last.run.id)}`} class="mono" title={last.run.id}>
              …{last.run.id.slice(-8)}
            </Link>{' '}
            <span class="muted">{ago(last.run.queued_at)}</span>
          </span>
        ) : (
          <span class="muted">No run yet.</span>
        )}
      </div>
    </div>
  )
}
