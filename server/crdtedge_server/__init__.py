"""The standalone crdtedge relay server (`crdtedge serve`)."""
