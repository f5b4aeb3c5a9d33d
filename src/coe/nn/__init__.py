"""Building blocks: norms and MLPs, attention, router, balance losses, token dispatch, experts, the CoE
loop."""
