// The flow as a graph: which block runs after which, and a layered
// layout of it for the editor's graph view. The server's plan decides
// exactly; this is what the editor draws.

/** The parts of a block the graph needs. */
export interface GraphBlock {
  id: string
  /** absent: after the block before it; []: with the run */
  needs?: string[]
  /** the block's expression strings (config, if, each), scanned for steps.X */
  sources: string[]
}

export const TRIGGER = '⚑trigger'

/** deps gives each block's dependencies, as the executor reads needs: a
 * block without needs runs after the block before it (the first, with the
 * run: TRIGGER); needs: [] runs with the run; unknown ids are dropped. */
export function deps(blocks: GraphBlock[]): Map<string, string[]> {
  const ids = new Set(blocks.map((b) => b.id))
  const out = new Map<string, string[]>()
  blocks.forEach((b, i) => {
    if (b.needs === undefined) out.set(b.id, [i === 0 ? TRIGGER : blocks[i - 1].id])
    else {
      const d = [...new Set(b.needs.filter((n) => ids.has(n) && n !== b.id))]
      out.set(b.id, d.length ? d : [TRIGGER])
    }
  })
  return out
}

/** refs lists the block ids named as steps.X (or steps["X"]) in sources. */
export function refs(sources: string[]): string[] {
  const out = new Set<string>()
  const re = /\bsteps\s*(?:\.\s*([A-Za-z_$][\w$-]*)|\[\s*(['"`])([^'"`]+)\2\s*\])/g
  for (const s of sources) for (const m of s.matchAll(re)) out.add(m[1] ?? m[3])
  return [...out]
}

/** ancestors is every block id the block runs after, directly or not. */
export function ancestors(blocks: GraphBlock[], id: string): Set<string> {
  const d = deps(blocks)
  const seen = new Set<string>()
  const stack = [...(d.get(id) ?? [])]
  while (stack.length) {
    const x = stack.pop()!
    if (x === TRIGGER || seen.has(x)) continue
    seen.add(x)
    stack.push(...(d.get(x) ?? []))
  }
  return seen
}

export interface NodeBox {
  id: string
  x: number
  y: number
  level: number
}
export interface Edge {
  from: string
  to: string
  /** dep: the block runs after from; ref: it reads steps.from, not a direct dependency */
  kind: 'dep' | 'ref'
  path: string
  /** where a label of the edge goes (its middle) */
  mid: { x: number; y: number }
}
export interface Layout {
  nodes: NodeBox[]
  edges: Edge[]
  width: number
  height: number
  /** top of the on_error lane, when there is one */
  laneY?: number
}

export const NODE_W = 156
export const NODE_H = 62
const GAP_X = 28
const GAP_Y = 56
const PAD = 16
const LANE_GAP = 56

/**
 * layout places the trigger at level 0 and each block one level below
 * the deepest block it depends on, orders each level by the mean position
 * of its dependencies (then by the order of the list), and centres the
 * levels. onError blocks go in a lane of their own under the graph, in
 * order. A cycle (refused at save, possible while editing) is cut where
 * it is found.
 */
export function layout(blocks: GraphBlock[], onError: string[] = []): Layout {
  const d = deps(blocks)
  const level = new Map<string, number>([[TRIGGER, 0]])
  const visiting = new Set<string>()
  const levelOf = (id: string): number => {
    const known = level.get(id)
    if (known !== undefined) return known
    if (visiting.has(id)) return 0
    visiting.add(id)
    const l = 1 + Math.max(0, ...(d.get(id) ?? [TRIGGER]).map(levelOf))
    visiting.delete(id)
    level.set(id, l)
    return l
  }
  blocks.forEach((b) => levelOf(b.id))

  const rows: string[][] = [[TRIGGER]]
  blocks.forEach((b) => {
    const l = level.get(b.id)!
    ;(rows[l] ??= []).push(b.id)
  })
  const order = new Map<string, number>(blocks.map((b, i) => [b.id, i]))
  const col = new Map<string, number>([[TRIGGER, 0]])
  for (let l = 1; l < rows.length; l++) {
    const row = rows[l] ?? []
    const bary = (id: string) => {
      const ds = (d.get(id) ?? []).map((x) => col.get(x) ?? 0)
      return ds.reduce((a, b) => a + b, 0) / Math.max(ds.length, 1)
    }
    row.sort((a, b) => bary(a) - bary(b) || order.get(a)! - order.get(b)!)
    row.forEach((id, i) => col.set(id, i - (row.length - 1) / 2))
    rows[l] = row
  }

  const widest = Math.max(1, onError.length, ...rows.map((r) => r?.length ?? 0))
  let width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X
  const nodes: NodeBox[] = []
  const at = new Map<string, NodeBox>()
  rows.forEach((row, l) => {
    const rowW = (row?.length ?? 0) * NODE_W + Math.max(0, (row?.length ?? 0) - 1) * GAP_X
    ;(row ?? []).forEach((id, i) => {
      const n = { id, level: l, x: (width - rowW) / 2 + i * (NODE_W + GAP_X), y: PAD + l * (NODE_H + GAP_Y) }
      nodes.push(n)
      at.set(id, n)
    })
  })
  let height = PAD + rows.length * (NODE_H + GAP_Y) - GAP_Y + PAD

  const edges: Edge[] = []
  const dep = (a: NodeBox, b: NodeBox) => {
    const x1 = a.x + NODE_W / 2, y1 = a.y + NODE_H
    const x2 = b.x + NODE_W / 2, y2 = b.y
    const c = Math.max(GAP_Y / 2, (y2 - y1) / 2)
    return { path: `M${x1},${y1} C${x1},${y1 + c} ${x2},${y2 - c} ${x2},${y2}`, mid: { x: x2, y: y2 - 14 } }
  }
  // A dashed reference goes down into the gap under its source's row, out
  // to a lane right of the nodes of the levels it spans, and into its
  // target from the gap above: it crosses edges but never a node.
  const refEdges: { from: NodeBox; to: NodeBox }[] = []
  for (const b of blocks) {
    const to = at.get(b.id)!
    const direct = d.get(b.id) ?? []
    for (const from of direct) edges.push({ from, to: b.id, kind: 'dep', ...dep(at.get(from)!, to) })
    for (const r of refs(b.sources)) {
      if (direct.includes(r) || r === b.id || !at.has(r)) continue
      refEdges.push({ from: at.get(r)!, to })
    }
  }
  const area = width
  let right = width - PAD
  refEdges.forEach(({ from: a, to: b }, k) => {
    const lo = Math.min(a.level, b.level), hi = Math.max(a.level, b.level)
    const edge = Math.max(...nodes.filter((n) => n.level >= lo && n.level <= hi).map((n) => n.x + NODE_W))
    const lane = edge + 14 + k * 8
    right = Math.max(right, lane)
    const x1 = a.x + NODE_W * 0.8, y1 = a.y + NODE_H, yg1 = y1 + GAP_Y * 0.3
    const x2 = b.x + NODE_W * 0.8, y2 = b.y, yg2 = y2 - GAP_Y * 0.3
    edges.push({
      from: a.id,
      to: b.id,
      kind: 'ref',
      path: `M${x1},${y1} L${x1},${yg1} L${lane},${yg1} L${lane},${yg2} L${x2},${yg2} L${x2},${y2}`,
      mid: { x: lane, y: (yg1 + yg2) / 2 },
    })
  })
  width = Math.max(width, right + PAD)

  let laneY: number | undefined
  if (onError.length) {
    laneY = height - PAD + LANE_GAP / 2
    const y = laneY + 28
    const rowW = onError.length * NODE_W + (onError.length - 1) * GAP_X
    let prev: NodeBox | undefined
    onError.forEach((id, i) => {
      const n = { id, level: -1, x: (area - rowW) / 2 + i * (NODE_W + GAP_X), y }
      nodes.push(n)
      if (prev) {
        const x1 = prev.x + NODE_W, x2 = n.x, ym = y + NODE_H / 2
        edges.push({ from: prev.id, to: id, kind: 'dep', path: `M${x1},${ym} L${x2},${ym}`, mid: { x: (x1 + x2) / 2, y: ym } })
      }
      prev = n
    })
    height = y + NODE_H + PAD
  }
  return { nodes, edges, width, height, laneY }
}
