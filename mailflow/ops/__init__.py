"""Operations: housekeeping and retention."""
