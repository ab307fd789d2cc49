# A test policy that spins: it walks an n*n grid looking for a pair that can
# never exist, so evaluating data.geoscope.decision takes time proportional
# to n*n and returns no actions. The work is plain Rego iteration, which OPA
# checks for cancellation, so an evaluation deadline stops it.
#
# n is 100000 (10^10 steps: effectively forever) unless the request previews
# an order whose legal_basis is a decimal number, which is then used as n.
# The server end-to-end tests use the first form for the evaluation deadline
# and the second, calibrated to about a second, for graceful shutdown.
package geoscope

default n := 100000

n := to_number(input.order.legal_basis) if regex.match(`^[0-9]{1,6}$`, input.order.legal_basis)

found if {
	some i in numbers.range(1, n)
	some j in numbers.range(1, n)
	i * j < 0
}

decision := {"actions": [], "refused": []} if not found
