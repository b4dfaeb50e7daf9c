package proofs

// SetAbsorbAt sets absorbAt for a test and returns what restores it.
func SetAbsorbAt(n int) (restore func()) {
	old := absorbAt
	absorbAt = n
	return func() { absorbAt = old }
}

// TreeSize is how many leaves the service's tree holds now.
func (s *Service) TreeSize() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.Size()
}
