import WanLoRACLI

WanLoRA.main()
