"""Customer lifetime value: predictive transaction and spend models, and the discounted CLV built on them."""
