// Package suggest finds the known name nearest to a mistyped one, for
// "did you mean" in error messages. A suggestion is always one of the
// known names given, never text derived from what was typed.
package suggest

import "strings"

// Nearest returns the name in known closest to typed by edit distance,
// ignoring case, when it is close enough to be a typo: at most 1 edit for
// names under 5 characters, at most 2 otherwise. It returns "" when typed
// is itself known, or when no name is that close. Ties go to the name
// that comes first in known.
func Nearest(typed string, known []string) string {
	limit := 2
	if len(typed) < 5 {
		limit = 1
	}
	lower := strings.ToLower(typed)
	best, bestD := "", limit+1
	for _, k := range known {
		if k == typed {
			return ""
		}
		if d := distance(lower, strings.ToLower(k), bestD); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b (bytes), or any value
// >= bound once it is known to be at least bound.
func distance(a, b string, bound int) int {
	if d := len(a) - len(b); d >= bound || -d >= bound {
		return bound
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= bound {
			return bound
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
