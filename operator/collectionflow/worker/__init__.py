"""What runs inside a phase Job: read the phase from the environment, heart-beat, report."""
