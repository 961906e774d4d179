/**
 * The vfio-user client: {@link io.vfu.client.VfioUserClient} connects to a device's socket and offers typed
 * calls for every client→server command; {@link io.vfu.client.GuestMemory} is the client memory the device may
 * DMA into, served to DMA_READ/DMA_WRITE and dirty-tracked. Settings are in {@link io.vfu.client.ClientOptions}.
 */
package io.vfu.client;
