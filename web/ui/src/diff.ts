// A line diff for the Versions page: the longest common subsequence of
// two texts' lines, as kept, removed and added lines. Flow definitions are
// a few hundred lines at most, so the quadratic table is small.

export interface DiffLine {
  kind: 'same' | 'del' | 'add'
  text: string
  /** line numbers in the old and the new text (1-based), where the line is */
  a?: number
  b?: number
}

export function lineDiff(oldText: string, newText: string): DiffLine[] {
  const a = oldText.split('\n')
  const b = newText.split('\n')
  const n = a.length
  const m = b.length
  // lcs[i][j] is the LCS length of a[i:] and b[j:].
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1))
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1])
  const out: DiffLine[] = []
  let i = 0
  let j = 0
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ kind: 'same', text: a[i], a: i + 1, b: j + 1 })
      i++
      j++
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
      out.push({ kind: 'del', text: a[i], a: i + 1 })
      i++
    } else {
      out.push({ kind: 'add', text: b[j], b: j + 1 })
      j++
    }
  }
  for (; i < n; i++) out.push({ kind: 'del', text: a[i], a: i + 1 })
  for (; j < m; j++) out.push({ kind: 'add', text: b[j], b: j + 1 })
  return out
}

/** canonical is a value as JSON with object keys sorted, two-space indented. */
export function canonical(v: unknown): string {
  const sort = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sort)
    if (x && typeof x === 'object') return Object.fromEntries(Object.keys(x as object).sort().map((k) => [k, sort((x as Record<string, unknown>)[k])]))
    return x
  }
  return JSON.stringify(sort(v), null, 2)
}

/** hunks keeps the changed lines with `context` lines around them; a gap is null. */
export function hunks(lines: DiffLine[], context = 3): (DiffLine | null)[] {
  const keep = new Uint8Array(lines.length)
  lines.forEach((l, k) => {
    if (l.kind === 'same') return
    for (let x = Math.max(0, k - context); x <= Math.min(lines.length - 1, k + context); x++) keep[x] = 1
  })
  const out: (DiffLine | null)[] = []
  let gap = false
  lines.forEach((l, k) => {
    if (keep[k]) {
      out.push(l)
      gap = false
    } else if (!gap) {
      out.push(null)
      gap = true
    }
  })
  return out
}
