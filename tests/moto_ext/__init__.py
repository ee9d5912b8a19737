"""moto extension for the branchpipeline-controller test bed; see README.md."""
