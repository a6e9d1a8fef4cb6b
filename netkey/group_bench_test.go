package netkey

import "testing"

func BenchmarkMulBase(b *testing.B) {
	s := suite.Scalar().Pick(suite.RandomStream())
	for b.Loop() {
		suite.Point().Mul(s, nil)
	}
}
func BenchmarkMulGeneric(b *testing.B) {
	s := suite.Scalar().Pick(suite.RandomStream())
	p := suite.Point().Pick(suite.RandomStream())
	for b.Loop() {
		suite.Point().Mul(s, p)
	}
}
func BenchmarkMulVartime(b *testing.B) {
	s := suite.Scalar().Pick(suite.RandomStream())
	p := suite.Point().Pick(suite.RandomStream())
	for b.Loop() {
		q := suite.Point()
		q.(interface{ AllowVarTime(bool) }).AllowVarTime(true)
		q.Mul(s, p)
	}
}
func BenchmarkHashToPoint(b *testing.B) {
	for b.Loop() {
		labelPoint([]byte("label"))
	}
}
