// The density colour bar: uint8 levels 0..255 shown as 0..1 of the frame's peak.
return (tick / 255).toFixed(1);
