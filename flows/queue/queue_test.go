package queue_test

import (
	"testing"

	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/flows/queue"
	"github.com/hushflow/hushflow/flows/queue/queuetest"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
)

// Both drivers keep the queue's contract, each on its database.
func TestDrivers(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			queuetest.Run(t, func(t *testing.T) (*store.DB, queue.Driver) {
				db := storetest.Open(t, b.Config(t), flows.Migrations())
				return db, queue.New(db)
			})
		})
	}
}
