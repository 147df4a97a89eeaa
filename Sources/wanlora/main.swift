import WanLoRACLI

await WanLoRA.start()
