package topic_test

import (
	"testing"

	"github.com/fireboom/fireboom/topic"
	"github.com/fireboom/fireboom/topic/logtest"
)

func TestRingConforms(t *testing.T) {
	logtest.Run(t, func(t *testing.T, run string, size int) topic.Log { return topic.NewRing("s0"+run, size) })
}
