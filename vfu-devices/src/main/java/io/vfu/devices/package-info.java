/**
 * Devices built only on vfu-server's public API: {@link io.vfu.devices.DemoDevice}, and the
 * {@link io.vfu.devices.Devices} registry that {@code vfu serve} builds devices from.
 */
package io.vfu.devices;
