import WanLoRACLI

await WanLoRA.main()
