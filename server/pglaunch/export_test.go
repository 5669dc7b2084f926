package pglaunch

// FindBinDirIn is findBinDir for tests: it searches only patterns.
var FindBinDirIn = findBinDir
