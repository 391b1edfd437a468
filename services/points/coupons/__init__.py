"""The wallet, local currency and coupons bought with it."""
