from kernelnet.cli import main

main()
