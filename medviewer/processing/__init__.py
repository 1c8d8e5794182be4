"""Classical image processing on core types (filters, region growing, radiomics)."""
