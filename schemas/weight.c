/*
 * schemas/weight.c — the fixed-point weight arithmetic of aggregation: a
 * sample's contribution count × period × weight as an exact integer in units
 * of 1 / WIRE_WEIGHT_SCALE event unit. The batch's weight is rounded once
 * (wire_weight_quantize); everything after is integer multiplication and
 * addition with overflow checks, so sums are exact and do not depend on the
 * order batches arrive in. Reasoning for the scale: schemas/README.md.
 */
#include <math.h>

#include "schemas/schemas.h"

int wire_weight_quantize(double weight, uint64_t *out)
{
	if (!isfinite(weight) || weight <= 0)
		return FDO_EINVAL;
	/*
	 * weight × 1e6 is one correctly rounded double multiplication; below
	 * 2^53 every integer is representable, so round() (halves away from
	 * zero, independent of the FPU rounding mode) gives the nearest
	 * integer to the product exactly as computed.
	 */
	double x = weight * (double)WIRE_WEIGHT_SCALE;
	if (x > 9007199254740992.0) /* 2^53 */
		return FDO_ELIMIT;
	double r = round(x);
	if (r < 1)
		return FDO_ELIMIT;
	*out = (uint64_t)r;
	return FDO_OK;
}

int wire_weight_fixed_wide(uint64_t count, uint64_t period, double weight,
			   wire_weight_t *out)
{
	uint64_t wq;
	int rc = wire_weight_quantize(weight, &wq);
	if (rc)
		return rc;
	/* count × period < 2^128 always; × wq (< 2^54) needs a check. */
	wire_weight_t cp = (wire_weight_t)count * period;
	if (cp != 0 && wq > (wire_weight_t)-1 / cp)
		return FDO_ELIMIT;
	*out = cp * wq;
	return FDO_OK;
}

int wire_weight_fixed(uint64_t count, uint64_t period, double weight,
		      uint64_t *out)
{
	wire_weight_t w;
	int rc = wire_weight_fixed_wide(count, period, weight, &w);
	if (rc)
		return rc;
	if (w > UINT64_MAX)
		return FDO_ELIMIT;
	*out = (uint64_t)w;
	return FDO_OK;
}

int wire_weight_add(wire_weight_t *acc, wire_weight_t v)
{
	wire_weight_t s = *acc + v;
	if (s < v)
		return FDO_ELIMIT;
	*acc = s;
	return FDO_OK;
}
