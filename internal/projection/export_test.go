package projection

// NewFakeStore exposes the projector tests' fake to the store contract
// (store_contract_test.go, package projection_test).
func NewFakeStore() Store { return newFakeStore() }
