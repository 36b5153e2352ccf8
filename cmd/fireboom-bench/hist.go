package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency histogram is log-linear over microseconds: exact below 64 µs,
// then 32 buckets per power of two (at most ~3% wide), up to 2^40 µs.
const (
	histSub     = 32
	histBuckets = histSub * 42
)

// hist counts latencies; record is safe for concurrent use.
type hist struct {
	counts [histBuckets]atomic.Int64
	max    atomic.Int64 // nanoseconds
}

func histIndex(us uint64) int {
	if us < 2*histSub {
		return int(us)
	}
	shift := bits.Len64(us) - 6 // us>>shift is in [32, 64)
	i := histSub*(shift+1) + int(us>>shift) - histSub
	return min(i, histBuckets-1)
}

// histUpper is the largest value (µs) that falls into bucket i.
func histUpper(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	m := uint64(i%histSub + histSub)
	return (m+1)<<shift - 1
}

func (h *hist) record(d time.Duration) {
	if d < 0 {
		d = 0 // clocks are shared, but be safe
	}
	h.counts[histIndex(uint64(d/time.Microsecond))].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (h *hist) reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.max.Store(0)
}

// snapshot returns the non-zero buckets as index→count and the maximum.
func (h *hist) snapshot() (map[int]int64, int64) {
	out := map[int]int64{}
	for i := range h.counts {
		if n := h.counts[i].Load(); n > 0 {
			out[i] = n
		}
	}
	return out, h.max.Load()
}

// latencies is a merged histogram, as reported.
type latencies struct {
	counts [histBuckets]int64
	total  int64
	max    time.Duration
}

func (l *latencies) add(buckets map[int]int64, maxNS int64) {
	for i, n := range buckets {
		if i >= 0 && i < histBuckets {
			l.counts[i] += n
			l.total += n
		}
	}
	l.max = max(l.max, time.Duration(maxNS))
}

// quantile returns the upper bound of the bucket holding quantile q
// (0 < q <= 1), capped at the observed maximum.
func (l *latencies) quantile(q float64) time.Duration {
	if l.total == 0 {
		return 0
	}
	rank := int64(q*float64(l.total) + 0.999999)
	rank = max(rank, 1)
	var seen int64
	for i, n := range l.counts {
		seen += n
		if seen >= rank {
			return min(time.Duration(histUpper(i)+1)*time.Microsecond, l.max)
		}
	}
	return l.max
}
