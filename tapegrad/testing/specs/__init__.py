"""Op specs by family, mirroring tapegrad/ops/. Each module appends its entries to op_db's table on import."""
