package demo

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// tickFeedSize bounds the ticks waiting for one slow stockPricesChanged
// subscriber; beyond it ticks are dropped and counted (Stats.Dropped).
const tickFeedSize = 256

// initialPrices are the symbols the ticker starts with.
var initialPrices = map[string]float64{
	"ACME":     100,
	"GLOBEX":   50,
	"INITECH":  25,
	"UMBRELLA": 75,
}

// ticker holds the latest price of every symbol and publishes each new one to
// the stockPricesChanged subscribers. Price moves come from a PRNG with a fixed
// seed, so a run is reproducible given the same sequence of ticks.
type ticker struct {
	mu     sync.Mutex
	rng    *rand.Rand
	prices map[string]*StockPrice // latest publication; values are never mutated
	subs   map[*tickSub]struct{}
}

type tickSub struct {
	feed    *feed[*StockPrice]
	symbols map[string]bool // nil: every symbol
}

// newTicker starts with initialPrices, seq 0, "published" at now.
func newTicker(now time.Time) *ticker {
	t := &ticker{
		rng:    rand.New(rand.NewPCG(1, 2)),
		prices: map[string]*StockPrice{},
		subs:   map[*tickSub]struct{}{},
	}
	for sym, p := range initialPrices {
		t.prices[sym] = &StockPrice{Symbol: sym, Price: p, PublishedAt: now.UTC().Format(time.RFC3339Nano)}
	}
	return t
}

// tick moves every price a little and publishes each; it returns the number
// of dropped deliveries.
func (t *ticker) tick(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	syms := make([]string, 0, len(t.prices))
	for sym := range t.prices {
		syms = append(syms, sym)
	}
	slices.Sort(syms) // map order is random; the PRNG sequence must not be
	drops := 0
	for _, sym := range syms {
		old := t.prices[sym]
		p := old.Price * (1 + (t.rng.Float64()-0.5)*0.02)
		p = math.Max(0.01, math.Round(p*100)/100)
		drops += t.publishLocked(sym, p, now)
	}
	return drops
}

// set publishes price for symbol (creating the symbol when new).
func (t *ticker) set(symbol string, price float64, now time.Time) (*StockPrice, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	drops := t.publishLocked(symbol, price, now)
	return t.prices[symbol], drops
}

func (t *ticker) publishLocked(symbol string, price float64, now time.Time) int {
	seq := 1
	if old := t.prices[symbol]; old != nil {
		seq = old.Seq + 1
	}
	sp := &StockPrice{Symbol: symbol, Price: price, Seq: seq, PublishedAt: now.UTC().Format(time.RFC3339Nano)}
	t.prices[symbol] = sp
	drops := 0
	for s := range t.subs {
		if s.symbols != nil && !s.symbols[symbol] {
			continue
		}
		if !s.feed.push(sp) {
			drops++
		}
	}
	return drops
}

// price returns the latest price of symbol, or nil.
func (t *ticker) price(symbol string) *StockPrice {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.prices[symbol]
}

// subscribe registers a subscriber for symbols (all when empty); the returned
// func unregisters it.
func (t *ticker) subscribe(symbols []string) (*feed[*StockPrice], func()) {
	s := &tickSub{feed: newFeed[*StockPrice](tickFeedSize)}
	if len(symbols) > 0 {
		s.symbols = map[string]bool{}
		for _, sym := range symbols {
			s.symbols[sym] = true
		}
	}
	t.mu.Lock()
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	return s.feed, func() {
		t.mu.Lock()
		delete(t.subs, s)
		t.mu.Unlock()
	}
}
